"""Category corrections API: a transaction's category and note, and the user's own rules."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from banking.selectors.category_rules import category_rule_get, category_rule_list
from banking.selectors.transactions import transaction_get
from banking.serializers.categories import (
    CategoryRuleChangeOutputSerializer,
    CategoryRuleDeletedOutputSerializer,
    CategoryRuleInputSerializer,
    CategoryRuleListOutputSerializer,
    CategoryRulePatchInputSerializer,
    TransactionCorrectedOutputSerializer,
    TransactionPatchInputSerializer,
)
from banking.serializers.common import MAX_ID, ErrorOutputSerializer
from banking.services.category_rules import (
    PATTERN_MIN_LENGTH,
    RULE_MAX_SHARE,
    RULE_SHARE_MIN_ROWS,
    category_rule_create,
    category_rule_delete,
    category_rule_update,
    transaction_category_set,
)
from fintrack.core.exceptions import NotFound
from fintrack.core.localtime import user_zone

BAD_INPUT = OpenApiResponse(
    ErrorOutputSerializer,
    description=(
        "Unknown category (unknown_category), a pattern empty or shorter than "
        f"{PATTERN_MIN_LENGTH} characters (category_rule_pattern_invalid), or one matching more "
        f"than {RULE_MAX_SHARE:.0%} of your transactions once it matches more than "
        f"{RULE_SHARE_MIN_ROWS} (category_rule_too_broad). Nothing was changed."
    ),
)
RULE_NOT_FOUND = OpenApiResponse(ErrorOutputSerializer, description="Not one of your rules.")
RULE_EXISTS = OpenApiResponse(
    ErrorOutputSerializer,
    description="You already have a rule with this match and pattern (category_rule_exists); "
    "extra.rule_id names it.",
)
FOLLOW_UP = (
    "Your daily aggregates (and so the summaries) follow at once; analytics is recomputed "
    "shortly after."
)
RULES_NOTE = (
    "A rule gives its category to every transaction whose merchant (the name without the "
    "city, match=merchant) or description (match=description) contains the pattern, in any "
    "case and with ё and е alike. Your rules come before FinTrack's own, at every sync too; "
    "a transaction you categorised yourself is never changed by a rule. When several rules "
    "match, merchant rules win over description rules, then the longer pattern, then the "
    "newer rule. " + FOLLOW_UP
)


def _rule_id_checked(rule_id: int) -> None:
    if rule_id > MAX_ID:
        raise NotFound("No such category rule.", extra={"rule_id": rule_id})


class CategoryRuleListApi(APIView):
    @extend_schema(
        operation_id="category_rules_list",
        responses={200: CategoryRuleListOutputSerializer},
        summary="Your own category rules, oldest first",
        description=RULES_NOTE,
        tags=["categories"],
    )
    def get(self, request):
        rules = category_rule_list(user=request.user)
        return Response(CategoryRuleListOutputSerializer({"results": rules}).data)

    @extend_schema(
        operation_id="category_rules_create",
        request=CategoryRuleInputSerializer,
        responses={201: CategoryRuleChangeOutputSerializer, 400: BAD_INPUT, 409: RULE_EXISTS},
        summary="Add a rule of your own; applied to your past transactions at once",
        description=RULES_NOTE,
        tags=["categories"],
    )
    def post(self, request):
        serializer = CategoryRuleInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        change = category_rule_create(
            user=request.user,
            match_kind=data["match"],
            pattern=data["pattern"],
            category_code=data["category_code"],
        )
        change.rule.transactions_updated = change.transactions_updated
        return Response(
            CategoryRuleChangeOutputSerializer(change.rule).data, status=status.HTTP_201_CREATED
        )


class CategoryRuleDetailApi(APIView):
    @extend_schema(
        operation_id="category_rules_update",
        request=CategoryRulePatchInputSerializer,
        responses={
            200: CategoryRuleChangeOutputSerializer,
            400: BAD_INPUT,
            404: RULE_NOT_FOUND,
            409: RULE_EXISTS,
        },
        summary="Change one of your rules; what it matched before and matches now is re-decided",
        description=RULES_NOTE,
        tags=["categories"],
    )
    def patch(self, request, rule_id: int):
        _rule_id_checked(rule_id)
        category_rule_get(user=request.user, rule_id=rule_id)  # not yours: 404 whatever the body
        serializer = CategoryRulePatchInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        change = category_rule_update(
            user=request.user,
            rule_id=rule_id,
            match_kind=data.get("match"),
            pattern=data.get("pattern"),
            category_code=data.get("category_code"),
        )
        change.rule.transactions_updated = change.transactions_updated
        return Response(CategoryRuleChangeOutputSerializer(change.rule).data)

    @extend_schema(
        operation_id="category_rules_delete",
        request=None,
        responses={200: CategoryRuleDeletedOutputSerializer, 404: RULE_NOT_FOUND},
        summary="Delete one of your rules",
        description=(
            "The transactions the rule decided go back to your other rules, else FinTrack's "
            "own; those you categorised yourself stay. " + FOLLOW_UP
        ),
        tags=["categories"],
    )
    def delete(self, request, rule_id: int):
        _rule_id_checked(rule_id)
        change = category_rule_delete(user=request.user, rule_id=rule_id)
        return Response(
            CategoryRuleDeletedOutputSerializer(
                {"id": rule_id, "transactions_updated": change.transactions_updated}
            ).data
        )


# The transactions detail route's PATCH (banking.apis.transactions.TransactionDetailApi.patch).
TRANSACTION_PATCH_SCHEMA = extend_schema(
    operation_id="transactions_update",
    request=TransactionPatchInputSerializer,
    responses={
        200: TransactionCorrectedOutputSerializer,
        400: BAD_INPUT,
        404: OpenApiResponse(ErrorOutputSerializer, description="Not one of yours."),
    },
    summary="Set a transaction's category (it sticks) and/or note; optionally for similar ones",
    description=(
        "The category you set is yours: no later sync or rule changes it (category_source "
        "becomes user). With apply_to_similar, a rule of your own is made (or updated) from "
        "the transaction's merchant without the city or, without one, its description, and "
        "applied to your other transactions now and to new ones at every sync. " + FOLLOW_UP
    ),
    tags=["transactions"],
)


def transaction_patch(request, transaction_id: int) -> Response:
    """What TransactionDetailApi.patch does: validate, correct, serialize."""
    if transaction_id > MAX_ID:
        raise NotFound("No such transaction.", extra={"transaction_id": transaction_id})
    transaction_get(user=request.user, transaction_id=transaction_id)  # not yours: 404 first
    serializer = TransactionPatchInputSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    correction = transaction_category_set(
        user=request.user,
        transaction_id=transaction_id,
        category_code=data.get("category_code"),
        note=data.get("note"),
        apply_to_similar=data["apply_to_similar"],
    )
    row = correction.transaction
    row.rule, row.similar_updated = correction.rule, correction.similar_updated
    context = {"zone": user_zone(request.user)}
    return Response(TransactionCorrectedOutputSerializer(row, context=context).data)
