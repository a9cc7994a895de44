"""Reads of a user's own category rules, and the matcher that applies them to a row's texts.

A rule matches a row when its folded pattern is contained in the row's folded merchant (kind
"merchant": the merchant name without its city, banking.textfold.merchant_display_name) or in its
folded description (kind "description"). When several of a user's rules match, the most specific
wins: merchant rules before description rules, then the longer pattern, then the newer rule.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, QuerySet

from banking.models import CategoryMatch, CategoryRule, Transaction
from banking.textfold import fold, merchant_display_name
from fintrack.core.exceptions import NotFound

# The matcher memoises per (merchant_name, description); bank texts repeat, so this stays small,
# and it is emptied when it grows past this (a history of one-off texts).
MATCH_CACHE_SIZE = 50_000


def category_rule_list(*, user) -> QuerySet[CategoryRule]:
    """The user's rules, oldest first, with their category."""
    return CategoryRule.objects.filter(user=user).select_related("category").order_by("id")


def category_rule_get(*, user, rule_id: int) -> CategoryRule:
    """One of the user's rules; another user's or an unknown id is simply not found."""
    rule = CategoryRule.objects.filter(user=user, id=rule_id).select_related("category").first()
    if rule is None:
        raise NotFound("No such category rule.", extra={"rule_id": rule_id})
    return rule


@dataclass(frozen=True)
class RuleSpec:
    """What matching needs of one rule (no ORM instance: the sync shares it across batches)."""

    rule_id: int
    match_kind: str
    pattern_folded: str
    category_id: int

    @classmethod
    def of(cls, rule: CategoryRule) -> "RuleSpec":
        return cls(
            rule_id=rule.pk,
            match_kind=rule.match_kind,
            pattern_folded=rule.pattern_folded,
            category_id=rule.category_id,
        )


def _precedence(spec: RuleSpec) -> tuple:
    return (spec.match_kind != CategoryMatch.MERCHANT, -len(spec.pattern_folded), -spec.rule_id)


class RuleMatcher:
    """The user's rules in precedence order; `match` is memoised on the row's two texts."""

    def __init__(self, specs: Iterable[RuleSpec]):
        self.specs = sorted(specs, key=_precedence)
        self._cache: dict[tuple[str, str], RuleSpec | None] = {}

    def __bool__(self) -> bool:
        return bool(self.specs)

    def match(self, *, merchant_name: str, description: str) -> RuleSpec | None:
        """The winning rule for a row with these texts, or None."""
        key = (merchant_name, description)
        try:
            return self._cache[key]
        except KeyError:
            pass
        found = None
        if self.specs:
            texts: dict[str, str] = {
                CategoryMatch.MERCHANT: fold(
                    merchant_display_name(merchant_name=merchant_name, description=description)
                ),
                CategoryMatch.DESCRIPTION: fold(description),
            }
            for spec in self.specs:
                if spec.pattern_folded in texts[spec.match_kind]:
                    found = spec
                    break
        if len(self._cache) >= MATCH_CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = found
        return found


def category_rule_matcher(*, user_id: int) -> RuleMatcher:
    """The user's rules, read once, as a matcher (empty, and falsy, when there are none)."""
    return RuleMatcher(
        RuleSpec(rule_id=rule_id, match_kind=kind, pattern_folded=pattern, category_id=category)
        for rule_id, kind, pattern, category in CategoryRule.objects.filter(
            user_id=user_id
        ).values_list("id", "match_kind", "pattern_folded", "category_id")
    )


def transaction_text_counts(*, user) -> list[tuple[str, str, int]]:
    """The user's distinct (merchant_name, description) pairs with their row counts.

    Rules are matched on folded text, which SQLite's LOWER() cannot compute for Cyrillic, so
    matching runs in Python over these pairs: the banks repeat a few hundred texts, so this is
    far fewer than the rows, and the database does the grouping.
    """
    return list(
        Transaction.objects.filter(user=user)
        .values_list("merchant_name", "description")
        .annotate(rows=Count("id"))
        .order_by()
    )
