"""Corrections that stick: a user sets a transaction's category, and their own rules.

A correction (`transaction_category_set`) marks the row `category_source="user"`: no rule and no
later sync changes it again. "Apply to similar" turns the row's merchant (or, without one, its
description) into a rule of the user's own. A rule (`category_rule_create/update/delete`) is
applied to the user's past rows at once (`category_rules_apply`) and by the sync to new and
updated rows before the built-in rules (banking.ingestion.transactions.categoriser_for).

Bounds on a pattern, checked before anything is written (400 otherwise):
* at least PATTERN_MIN_LENGTH characters besides spaces once folded (lowercase, ё → е, spaces
  collapsed);
* it may not match more than RULE_MAX_SHARE (half) of the user's rows, once it matches more than
  RULE_SHARE_MIN_ROWS rows: "доход" on a history that is mostly income is a mistake, not a rule,
  while a new user's ten rows, six of them at one grocer, are not refused.

After any change the user's daily aggregates are rebuilt from the earliest local day a changed row
falls on (in the same database transaction, so summaries follow at once); once the transaction
commits, banking.signals.transactions_changed tells the apps above (analytics then queues a
recomputation).
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Min, Q
from django.utils import timezone

from banking.categorization import category_id_for
from banking.models import (
    CategoryMatch,
    CategoryRule,
    CategorySource,
    Transaction,
    TransactionCategory,
)
from banking.selectors.category_rules import (
    RuleMatcher,
    RuleSpec,
    category_rule_get,
    category_rule_matcher,
    transaction_text_counts,
)
from banking.selectors.transactions import transaction_get
from banking.services.transactions import transaction_aggregates_recompute
from banking.signals import transactions_changed_on_commit
from banking.textfold import fold, merchant_display_name
from fintrack.core.exceptions import Conflict, ValidationFailed
from fintrack.core.localtime import local_date

logger = logging.getLogger(__name__)

PATTERN_MIN_LENGTH = 3
PATTERN_MAX_LENGTH = 255  # CategoryRule.pattern's column
RULE_MAX_SHARE = 0.5
RULE_SHARE_MIN_ROWS = 20
# (merchant_name, description) pairs per UPDATE: an OR of this many equalities stays a cheap plan.
PAIRS_PER_QUERY = 200


class UnknownCategory(ValidationFailed):
    code = "unknown_category"
    default_message = "No such category."


class CategoryRulePatternInvalid(ValidationFailed):
    code = "category_rule_pattern_invalid"
    default_message = "The pattern is empty or too short."


class CategoryRuleTooBroad(ValidationFailed):
    code = "category_rule_too_broad"
    default_message = "The pattern matches too many of your transactions."


class CategoryRuleExists(Conflict):
    code = "category_rule_exists"
    default_message = "You already have a rule with this pattern."


@dataclass
class CategoryCorrection:
    """What a PATCH of a transaction did."""

    transaction: Transaction
    rule: CategoryRule | None = None
    rule_created: bool = False
    similar_updated: int = 0


@dataclass
class CategoryRuleChange:
    """A rule as created, changed or deleted, and how many past rows it re-categorised."""

    rule: CategoryRule
    transactions_updated: int = 0


# --- Guards --------------------------------------------------------------------------------------


def _category_get(*, code: str, field: str = "category_code") -> TransactionCategory:
    category = TransactionCategory.objects.filter(code=code).first()
    if category is None:
        raise UnknownCategory(
            f"{field}: unknown category code {code!r}.",
            extra={"fields": {field: ["Unknown category code."]}},
        )
    return category


def _match_kind_checked(match_kind: str) -> str:
    if match_kind not in CategoryMatch.values:
        raise ValidationFailed(
            f"match: must be one of {', '.join(CategoryMatch.values)}.",
            extra={"fields": {"match": ["Unknown match kind."]}},
        )
    return match_kind


def _pattern_checked(
    *, match_kind: str, pattern: str, texts: list[tuple[str, str, int]], field: str
) -> str:
    """The folded pattern, if it is long enough and not too broad for this user's rows."""
    folded = fold(pattern)
    if len(folded.replace(" ", "")) < PATTERN_MIN_LENGTH:
        raise CategoryRulePatternInvalid(
            f"{field}: the pattern must have at least {PATTERN_MIN_LENGTH} characters besides"
            f" spaces (got {folded!r}).",
            extra={"fields": {field: [f"At least {PATTERN_MIN_LENGTH} characters."]}},
        )
    if len(folded) > PATTERN_MAX_LENGTH or len(pattern) > PATTERN_MAX_LENGTH:
        raise CategoryRulePatternInvalid(
            f"{field}: the pattern may have at most {PATTERN_MAX_LENGTH} characters.",
            extra={"fields": {field: [f"At most {PATTERN_MAX_LENGTH} characters."]}},
        )
    probe = RuleMatcher(
        [RuleSpec(rule_id=0, match_kind=match_kind, pattern_folded=folded, category_id=0)]
    )
    total = sum(rows for _merchant, _description, rows in texts)
    matched = sum(
        rows
        for merchant, description, rows in texts
        if probe.match(merchant_name=merchant, description=description)
    )
    if matched > RULE_SHARE_MIN_ROWS and matched > total * RULE_MAX_SHARE:
        raise CategoryRuleTooBroad(
            f"{field}: {folded!r} matches {matched} of your {total} transactions; a rule may"
            f" cover at most {RULE_MAX_SHARE:.0%} of them.",
            extra={
                "fields": {field: ["The pattern matches too many of your transactions."]},
                "matched_rows": matched,
                "total_rows": total,
                "max_share": RULE_MAX_SHARE,
            },
        )
    return folded


def similar_pattern_of(row: Transaction) -> tuple[str, str]:
    """The rule "apply to similar" makes of a row: its merchant without the city, else its
    description."""
    merchant = merchant_display_name(merchant_name=row.merchant_name, description=row.description)
    if fold(merchant):
        return CategoryMatch.MERCHANT, merchant.strip()[:PATTERN_MAX_LENGTH]
    return CategoryMatch.DESCRIPTION, (row.description or "").strip()[:PATTERN_MAX_LENGTH]


# --- Applying rules to stored rows ---------------------------------------------------------------


def _pairs_q(pairs: list[tuple[str, str]]) -> Q:
    condition = Q()
    for merchant, description in pairs:
        condition |= Q(merchant_name=merchant, description=description)
    return condition


def _chunks(items: list, size: int = PAIRS_PER_QUERY):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _earlier(first: datetime | None, second: datetime | None) -> datetime | None:
    if first is None or second is None:
        return first or second
    return min(first, second)


def _recategorise(
    *, user, touched: list[RuleSpec], texts: list[tuple[str, str, int]] | None = None
) -> tuple[int, datetime | None]:
    """Re-decide the rows any `touched` rule matches (as it was or as it is now) from the user's
    current rules, then the built-in ones. Rows the user corrected by hand stay as they are.

    Returns how many rows changed and the earliest booking time among them.
    """
    if texts is None:
        texts = transaction_text_counts(user=user)
    touched_matcher = RuleMatcher(touched)
    current = category_rule_matcher(user_id=user.pk)
    by_category: dict[int, list[tuple[str, str]]] = {}
    unruled: list[tuple[str, str]] = []
    for merchant, description, _rows in texts:
        if touched_matcher.match(merchant_name=merchant, description=description) is None:
            continue
        spec = current.match(merchant_name=merchant, description=description)
        if spec is None:
            unruled.append((merchant, description))
        else:
            by_category.setdefault(spec.category_id, []).append((merchant, description))

    rows = Transaction.objects.filter(user=user).exclude(category_source=CategorySource.USER)
    now = timezone.now()
    updated = 0
    earliest: datetime | None = None
    for category_id, pairs in by_category.items():
        for chunk in _chunks(pairs):
            changing = rows.filter(_pairs_q(chunk)).exclude(
                category_id=category_id, category_source=CategorySource.USER_RULE
            )
            first = changing.aggregate(first=Min("booking_date"))["first"]
            if first is None:
                continue
            updated += changing.update(
                category_id=category_id, category_source=CategorySource.USER_RULE, updated_at=now
            )
            earliest = _earlier(earliest, first)
    # Rows a rule decided that no rule matches any more go back to the built-in rules.
    for chunk in _chunks(unruled):
        released = list(
            rows.filter(_pairs_q(chunk), category_source=CategorySource.USER_RULE).only(
                "id", "amount", "booking_date", "description", "mcc", "merchant_category"
            )
        )
        for row in released:
            row.category_id = category_id_for(
                description=row.description,
                mcc=row.mcc,
                merchant_category=row.merchant_category,
                amount=row.amount,
            )
            row.category_source = CategorySource.BANK_RULE
            row.updated_at = now
            earliest = _earlier(earliest, row.booking_date)
        Transaction.objects.bulk_update(
            released, ["category", "category_source", "updated_at"], batch_size=500
        )
        updated += len(released)
    return updated, earliest


def _derived_data_refresh(*, user, since: datetime | None) -> None:
    """Aggregates from the local day of `since` on, now; once the transaction commits, the apps
    above are told (banking.signals.transactions_changed: analytics recomputes)."""
    if since is None:
        return
    since_date = local_date(user, since)
    transaction_aggregates_recompute(user=user, since_date=since_date)
    transactions_changed_on_commit(sender=Transaction, user_id=user.pk, since_date=since_date)


def category_rules_apply(
    *, user, rule: CategoryRule, texts: list[tuple[str, str, int]] | None = None
) -> int:
    """Apply one of the user's rules to their past rows now; returns how many rows changed."""
    with transaction.atomic():
        updated, earliest = _recategorise(user=user, touched=[RuleSpec.of(rule)], texts=texts)
        _derived_data_refresh(user=user, since=earliest)
    logger.info("category rule %s of user %s: %s rows re-categorised", rule.pk, user.pk, updated)
    return updated


# --- Services ------------------------------------------------------------------------------------


def transaction_category_set(
    *,
    user,
    transaction_id: int,
    category_code: str | None,
    note: str | None = None,
    apply_to_similar: bool = False,
) -> CategoryCorrection:
    """Set one of the user's transactions' category (it sticks) and/or note; optionally make a
    rule of its merchant or description and apply it to the user's other rows."""
    row = transaction_get(user=user, transaction_id=transaction_id)
    if apply_to_similar and category_code is None:
        raise ValidationFailed(
            "apply_to_similar: needs a category.",
            extra={"fields": {"apply_to_similar": ["Needs a category."]}},
        )
    category = _category_get(code=category_code) if category_code is not None else None
    texts = None
    if apply_to_similar:
        match_kind, pattern = similar_pattern_of(row)
        texts = transaction_text_counts(user=user)
        folded = _pattern_checked(
            match_kind=match_kind, pattern=pattern, texts=texts, field="apply_to_similar"
        )

    correction = CategoryCorrection(transaction=row)
    if category is None and note is None:
        return correction  # nothing to change
    with transaction.atomic():
        changes: dict = {}
        if category is not None:
            changes.update(category_id=category.pk, category_source=CategorySource.USER)
        if note is not None:
            changes["note"] = note
        Transaction.objects.filter(pk=row.pk, user=user).update(
            **changes, updated_at=timezone.now()
        )
        earliest = None
        if category is not None and row.category_id != category.pk:
            earliest = row.booking_date
        if apply_to_similar and category is not None:  # checked above: a rule needs a category
            correction.rule, correction.rule_created = CategoryRule.objects.update_or_create(
                user=user,
                match_kind=match_kind,
                pattern_folded=folded,
                defaults={"pattern": pattern, "category": category},
            )
            correction.similar_updated, first = _recategorise(
                user=user, touched=[RuleSpec.of(correction.rule)], texts=texts
            )
            earliest = _earlier(earliest, first)
        _derived_data_refresh(user=user, since=earliest)
    correction.transaction = transaction_get(user=user, transaction_id=row.pk)
    logger.info(
        "transaction %s of user %s: category %s, rule %s, %s similar rows",
        row.pk,
        user.pk,
        category_code,
        correction.rule.pk if correction.rule else None,
        correction.similar_updated,
    )
    return correction


def category_rule_create(
    *, user, match_kind: str, pattern: str, category_code: str
) -> CategoryRuleChange:
    """A new rule of the user's own, applied to their past rows at once."""
    match_kind = _match_kind_checked(match_kind)
    category = _category_get(code=category_code)
    texts = transaction_text_counts(user=user)
    folded = _pattern_checked(match_kind=match_kind, pattern=pattern, texts=texts, field="pattern")
    _unique_checked(user=user, match_kind=match_kind, pattern_folded=folded)
    try:
        with transaction.atomic():
            rule = CategoryRule.objects.create(
                user=user,
                match_kind=match_kind,
                pattern=pattern.strip(),
                pattern_folded=folded,
                category=category,
            )
            updated = category_rules_apply(user=user, rule=rule, texts=texts)
    except IntegrityError:  # a concurrent request made the same rule first
        _unique_checked(user=user, match_kind=match_kind, pattern_folded=folded)
        raise
    return CategoryRuleChange(
        rule=category_rule_get(user=user, rule_id=rule.pk), transactions_updated=updated
    )


def _unique_checked(*, user, match_kind: str, pattern_folded: str, rule_id: int | None = None):
    clash = CategoryRule.objects.filter(
        user=user, match_kind=match_kind, pattern_folded=pattern_folded
    )
    if rule_id is not None:
        clash = clash.exclude(pk=rule_id)
    existing = clash.values_list("pk", flat=True).first()
    if existing is not None:
        raise CategoryRuleExists(
            "You already have a rule with this pattern.",
            extra={"fields": {"pattern": ["Already a rule of yours."]}, "rule_id": existing},
        )


def category_rule_update(
    *,
    user,
    rule_id: int,
    match_kind: str | None = None,
    pattern: str | None = None,
    category_code: str | None = None,
) -> CategoryRuleChange:
    """Change one of the user's rules; rows it matched before or matches now are re-decided."""
    rule = category_rule_get(user=user, rule_id=rule_id)
    if match_kind is None and pattern is None and category_code is None:
        return CategoryRuleChange(rule=rule)  # nothing to change
    before = RuleSpec.of(rule)
    new_kind = _match_kind_checked(match_kind) if match_kind is not None else rule.match_kind
    category = _category_get(code=category_code) if category_code is not None else rule.category
    new_pattern = pattern.strip() if pattern is not None else rule.pattern
    texts = transaction_text_counts(user=user)
    folded = rule.pattern_folded
    if pattern is not None or new_kind != rule.match_kind:
        folded = _pattern_checked(
            match_kind=new_kind, pattern=new_pattern, texts=texts, field="pattern"
        )
        _unique_checked(user=user, match_kind=new_kind, pattern_folded=folded, rule_id=rule.pk)
    with transaction.atomic():
        rule.match_kind, rule.pattern, rule.pattern_folded = new_kind, new_pattern, folded
        rule.category = category
        rule.save(
            update_fields=["match_kind", "pattern", "pattern_folded", "category", "updated_at"]
        )
        updated, earliest = _recategorise(
            user=user, touched=[before, RuleSpec.of(rule)], texts=texts
        )
        _derived_data_refresh(user=user, since=earliest)
    return CategoryRuleChange(rule=rule, transactions_updated=updated)


def category_rule_delete(*, user, rule_id: int) -> CategoryRuleChange:
    """Delete one of the user's rules; the rows it decided go back to the remaining rules."""
    rule = category_rule_get(user=user, rule_id=rule_id)
    spec = RuleSpec.of(rule)
    with transaction.atomic():
        rule.delete()
        updated, earliest = _recategorise(user=user, touched=[spec])
        _derived_data_refresh(user=user, since=earliest)
    return CategoryRuleChange(rule=rule, transactions_updated=updated)
