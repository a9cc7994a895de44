"""Transactions API: the keyset-paginated feed, one transaction, and summaries."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from banking.filters import TransactionFilters, cursor_decode
from banking.models import Account, TransactionCategory
from banking.selectors.transactions import (
    transaction_feed,
    transaction_get,
    transaction_summary,
)
from banking.serializers.common import MAX_ID, ErrorOutputSerializer
from banking.serializers.transactions import (
    TransactionListParamsSerializer,
    TransactionOutputSerializer,
    TransactionPageOutputSerializer,
    TransactionSummaryOutputSerializer,
    TransactionSummaryParamsSerializer,
)
from fintrack.core.exceptions import NotFound, ValidationFailed
from fintrack.core.localtime import user_today, user_zone, user_zone_name

BAD_INPUT = OpenApiResponse(ErrorOutputSerializer, description="A parameter is not valid.")
WHAT_COUNTS = (
    "Income and spending count booked, pending and refunded transactions; declined ones and "
    "transfers between your own accounts (even at different banks) are excluded."
)


def _query_param(name: str, type_, description: str, **extra) -> OpenApiParameter:
    return OpenApiParameter(
        name, type_, OpenApiParameter.QUERY, required=False, description=description, **extra
    )


FEED_PARAMETERS = [
    _query_param("from", OpenApiTypes.DATE, "First booking day, inclusive (your local day)."),
    _query_param("to", OpenApiTypes.DATE, "Last booking day, inclusive (your local day)."),
    _query_param("account_id", OpenApiTypes.INT, "One of your accounts."),
    _query_param("bank", OpenApiTypes.STR, "Bank code.", enum=["vbank", "abank", "sbank"]),
    _query_param("category", OpenApiTypes.STR, "Category code(s), comma-separated."),
    _query_param("search", OpenApiTypes.STR, "Text in description, merchant or counterparty."),
    _query_param("cursor", OpenApiTypes.STR, "next_cursor of the previous page."),
    _query_param("page_size", OpenApiTypes.INT, "1–200, default 50."),
]


def _feed_filters(*, user, params: dict) -> TransactionFilters:
    """Turn validated parameters into filters, checking ids and codes against the database."""
    account_id = params.get("account_id")
    if account_id is not None and not Account.objects.filter(user=user, id=account_id).exists():
        raise ValidationFailed(
            "account_id: no such account among yours.",
            extra={"fields": {"account_id": ["No such account."]}},
        )
    codes: tuple[str, ...] = ()
    if params.get("category"):
        codes = tuple(sorted({code.strip() for code in params["category"].split(",")} - {""}))
        known = set(
            TransactionCategory.objects.filter(code__in=codes).values_list("code", flat=True)
        )
        unknown = sorted(set(codes) - known)
        if unknown or not codes:
            raise ValidationFailed(
                f"category: unknown category code(s): {', '.join(unknown) or '(empty)'}.",
                extra={"fields": {"category": ["Unknown category code."]}, "unknown": unknown},
            )
    return TransactionFilters(
        date_from=params.get("date_from"),
        date_to=params.get("date_to"),
        account_id=account_id,
        bank_code=params.get("bank"),
        category_codes=codes,
        search=params.get("search", ""),
        time_zone=user_zone_name(user),
    )


class TransactionListApi(APIView):
    @extend_schema(
        operation_id="transactions_list",
        parameters=FEED_PARAMETERS,
        responses={200: TransactionPageOutputSerializer, 400: BAD_INPUT},
        summary="Your transactions, newest first, with cursor pagination",
        description=(
            "Keyset pagination on (booking_date, id) descending: each row appears once, and a "
            "deep page costs what the first one does. Pass next_cursor as ?cursor= with the same "
            "filters."
        ),
        tags=["transactions"],
    )
    def get(self, request):
        params_serializer = TransactionListParamsSerializer(data=request.query_params)
        params_serializer.is_valid(raise_exception=True)
        params = params_serializer.validated_data
        filters = _feed_filters(user=request.user, params=params)
        cursor = cursor_decode(params["cursor"]) if params.get("cursor") else None
        page = transaction_feed(
            user=request.user, filters=filters, cursor=cursor, page_size=params["page_size"]
        )
        data = {
            "results": page.results,
            "next_cursor": page.next_cursor,
            "page_size": params["page_size"],
        }
        context = {"zone": user_zone(request.user)}
        return Response(TransactionPageOutputSerializer(data, context=context).data)


class TransactionSummaryApi(APIView):
    @extend_schema(
        operation_id="transactions_summary",
        parameters=[
            _query_param(
                "period",
                OpenApiTypes.STR,
                "7d, 30d (default), 90d (ending today) or month (this calendar month); "
                "ignored when from/to are given.",
                enum=["7d", "30d", "90d", "month"],
            ),
            _query_param("from", OpenApiTypes.DATE, "Custom range start, inclusive (local day)."),
            _query_param("to", OpenApiTypes.DATE, "Custom range end, inclusive; default today."),
        ],
        responses={200: TransactionSummaryOutputSerializer, 400: BAD_INPUT},
        summary="Income, spending and net per currency, by category and by day",
        description=(
            "Served from the daily aggregates maintained by the sync. Days and months are local "
            "to your profile's time_zone (default Europe/Moscow); periods end on your local "
            "today. by_month lists the local months of the range; a month cut by the range, the "
            "first month of your history and the current month are complete=false, and "
            f"monthly_average averages the complete months only. {WHAT_COUNTS}"
        ),
        tags=["transactions"],
    )
    def get(self, request):
        today = user_today(request.user)
        params_serializer = TransactionSummaryParamsSerializer(
            data=request.query_params, context={"today": today}
        )
        params_serializer.is_valid(raise_exception=True)
        params = params_serializer.validated_data
        data = {
            "period": params["period"],
            "date_from": params["date_from"],
            "date_to": params["date_to"],
            "time_zone": user_zone_name(request.user),
            "currencies": transaction_summary(
                user=request.user,
                date_from=params["date_from"],
                date_to=params["date_to"],
                today=today,
            ),
        }
        return Response(TransactionSummaryOutputSerializer(data).data)


class TransactionDetailApi(APIView):
    @extend_schema(
        operation_id="transactions_detail",
        responses={
            200: TransactionOutputSerializer,
            404: OpenApiResponse(ErrorOutputSerializer, description="Not one of yours."),
        },
        summary="One transaction (normalised fields; the bank's raw JSON is admin-only)",
        tags=["transactions"],
    )
    def get(self, request, transaction_id: int):
        if transaction_id > MAX_ID:
            raise NotFound("No such transaction.", extra={"transaction_id": transaction_id})
        transaction = transaction_get(user=request.user, transaction_id=transaction_id)
        context = {"zone": user_zone(request.user)}
        return Response(TransactionOutputSerializer(transaction, context=context).data)
