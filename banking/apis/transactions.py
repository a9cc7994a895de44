"""Transactions API: the keyset-paginated feed, its CSV export, one transaction, and summaries."""

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from banking.apis.categories import TRANSACTION_PATCH_SCHEMA, transaction_patch
from banking.filters import TransactionFilters, cursor_decode
from banking.models import Account, TransactionCategory
from banking.selectors.transactions import (
    transaction_export_rows,
    transaction_feed,
    transaction_get,
    transaction_summary,
)
from banking.serializers.common import MAX_ID, ErrorOutputSerializer
from banking.serializers.transactions import (
    TransactionExportParamsSerializer,
    TransactionListParamsSerializer,
    TransactionOutputSerializer,
    TransactionPageOutputSerializer,
    TransactionSummaryOutputSerializer,
    TransactionSummaryParamsSerializer,
    transaction_csv_chunks,
)
from fintrack.core.exceptions import NotFound, ValidationFailed
from fintrack.core.localtime import user_today, user_zone, user_zone_name

BAD_INPUT = OpenApiResponse(ErrorOutputSerializer, description="A parameter is not valid.")
TRANSACTION_EXAMPLE = {
    "id": 4821,
    "account_id": 12,
    "bank_code": "vbank",
    "amount": "-512.00",
    "currency": "RUB",
    "booking_date": "2026-11-30T21:15:00Z",
    "local_date": "2026-12-01",
    "value_date": "2026-11-30T21:15:00Z",
    "status": "booked",
    "description": "Пятёрочка - Москва",
    "merchant_name": "Пятёрочка",
    "city": "Москва",
    "merchant_category": "grocery",
    "mcc": "5411",
    "category": {"code": "groceries", "name_en": "Groceries", "name_ru": "Продукты"},
    "category_source": "bank_rule",
    "note": "",
    "counterparty": "",
    "is_own_transfer": False,
    "transfer_pair_id": None,
}
PAGE_EXAMPLE = OpenApiExample(
    "A page",
    value={"results": [TRANSACTION_EXAMPLE], "next_cursor": "eyJpIjogNDgyMX0", "page_size": 50},
    response_only=True,
    status_codes=["200"],
)
SUMMARY_EXAMPLE = OpenApiExample(
    "30 days",
    value={
        "period": "30d",
        "from": "2026-11-02",
        "to": "2026-12-01",
        "time_zone": "Europe/Moscow",
        "currencies": [
            {
                "currency": "RUB",
                "income": "153000.00",
                "spending": "61240.50",
                "net": "91759.50",
                "count": 87,
                "by_category": [
                    {
                        "category_code": "groceries",
                        "category_name_en": "Groceries",
                        "category_name_ru": "Продукты",
                        "category_kind": "expense",
                        "currency": "RUB",
                        "income": "0.00",
                        "spending": "18450.20",
                        "net": "-18450.20",
                        "count": 31,
                    }
                ],
                "by_day": [
                    {
                        "date": "2026-12-01",
                        "currency": "RUB",
                        "income": "0.00",
                        "spending": "512.00",
                        "net": "-512.00",
                        "count": 1,
                    }
                ],
                "by_month": [
                    {
                        "month": "2026-11",
                        "currency": "RUB",
                        "income": "153000.00",
                        "spending": "60728.50",
                        "net": "92271.50",
                        "count": 86,
                        "days_with_data": 29,
                        "days_in_month": 30,
                        "complete": False,
                    }
                ],
                "monthly_average": {
                    "months": 0,
                    "currency": "RUB",
                    "income": None,
                    "spending": None,
                    "net": None,
                },
            }
        ],
    },
    response_only=True,
    status_codes=["200"],
)
WHAT_COUNTS = (
    "Income and spending count booked, pending and refunded transactions; declined ones and "
    "transfers between your own accounts (even at different banks) are excluded."
)


def _query_param(name: str, type_, description: str, **extra) -> OpenApiParameter:
    return OpenApiParameter(
        name, type_, OpenApiParameter.QUERY, required=False, description=description, **extra
    )


FILTER_PARAMETERS = [
    _query_param("from", OpenApiTypes.DATE, "First booking day, inclusive (your local day)."),
    _query_param("to", OpenApiTypes.DATE, "Last booking day, inclusive (your local day)."),
    _query_param("account_id", OpenApiTypes.INT, "One of your accounts."),
    _query_param("bank_code", OpenApiTypes.STR, "Bank code.", enum=["vbank", "abank", "sbank"]),
    _query_param(
        "category_code",
        OpenApiTypes.STR,
        "Category code(s), comma-separated (a transaction's category.code).",
    ),
    _query_param(
        "search",
        OpenApiTypes.STR,
        "Text in description, merchant or counterparty; any case, ё and е alike.",
    ),
    _query_param("amount_min", OpenApiTypes.DECIMAL, "Smallest |amount|, inclusive, e.g. 100.50."),
    _query_param("amount_max", OpenApiTypes.DECIMAL, "Largest |amount|, inclusive."),
    _query_param(
        "direction",
        OpenApiTypes.STR,
        "in: money in (amount > 0); out: money out (amount < 0).",
        enum=["in", "out"],
    ),
    _query_param(
        "merchant_name",
        OpenApiTypes.STR,
        "One merchant by name, any case, ё and е alike (the name without the city).",
    ),
    _query_param(
        "ordering",
        OpenApiTypes.STR,
        "-date (default, newest first), date, -amount (largest |amount| first) or amount; "
        "ties in id order.",
        enum=["-date", "date", "-amount", "amount"],
    ),
]
FEED_PARAMETERS = [
    *FILTER_PARAMETERS,
    _query_param("cursor", OpenApiTypes.STR, "next_cursor of the previous page, same ordering."),
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
    if params.get("category_code"):
        codes = tuple(sorted({code.strip() for code in params["category_code"].split(",")} - {""}))
        known = set(
            TransactionCategory.objects.filter(code__in=codes).values_list("code", flat=True)
        )
        unknown = sorted(set(codes) - known)
        if unknown or not codes:
            raise ValidationFailed(
                f"category_code: unknown category code(s): {', '.join(unknown) or '(empty)'}.",
                extra={
                    "fields": {"category_code": ["Unknown category code."]},
                    "unknown": unknown,
                },
            )
    return TransactionFilters(
        date_from=params.get("date_from"),
        date_to=params.get("date_to"),
        account_id=account_id,
        bank_code=params.get("bank_code"),
        category_codes=codes,
        search=params.get("search", ""),
        time_zone=user_zone_name(user),
        amount_min=params.get("amount_min"),
        amount_max=params.get("amount_max"),
        direction=params.get("direction"),
        merchant=params.get("merchant_name", ""),
    )


class TransactionListApi(APIView):
    @extend_schema(
        operation_id="transactions_list",
        parameters=FEED_PARAMETERS,
        responses={200: TransactionPageOutputSerializer, 400: BAD_INPUT},
        examples=[PAGE_EXAMPLE],
        summary="Your transactions, newest first, with cursor pagination",
        description=(
            "Keyset pagination on (booking_date, id), or (|amount|, id) with ordering=±amount: "
            "each row appears once, and a deep page of the date orderings costs what the first "
            "one does. Pass next_cursor as ?cursor= with the same filters and ordering. Text "
            "filters ignore case and treat ё as е."
        ),
        tags=["transactions"],
    )
    def get(self, request):
        params_serializer = TransactionListParamsSerializer(data=request.query_params)
        params_serializer.is_valid(raise_exception=True)
        params = params_serializer.validated_data
        filters = _feed_filters(user=request.user, params=params)
        ordering = params["ordering"]
        cursor = (
            cursor_decode(params["cursor"], ordering=ordering) if params.get("cursor") else None
        )
        page = transaction_feed(
            user=request.user,
            filters=filters,
            cursor=cursor,
            page_size=params["page_size"],
            ordering=ordering,
        )
        data = {
            "results": page.results,
            "next_cursor": page.next_cursor,
            "page_size": params["page_size"],
        }
        context = {"zone": user_zone(request.user)}
        return Response(TransactionPageOutputSerializer(data, context=context).data)


class TransactionExportApi(APIView):
    @extend_schema(
        operation_id="transactions_export_csv",
        parameters=FILTER_PARAMETERS,
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description=(
                    "UTF-8 with a BOM; one header row: id, local_date, local_time, amount, "
                    "currency, description, merchant_name, category_code, category_name_ru, "
                    "counterparty, bank_code, account, status."
                ),
            ),
            400: BAD_INPUT,
        },
        summary="Your transactions as a CSV file, with the feed's filters and ordering",
        description=(
            "Every matching row, streamed (no paging). local_date and local_time are your "
            "local ones (profile time_zone); amount is signed, a decimal with a dot and two "
            "decimals. Text cells a "
            "spreadsheet would run as a formula (starting with = + - @) get a leading '."
        ),
        tags=["transactions"],
    )
    def get(self, request):
        params_serializer = TransactionExportParamsSerializer(data=request.query_params)
        params_serializer.is_valid(raise_exception=True)
        params = params_serializer.validated_data
        filters = _feed_filters(user=request.user, params=params)
        rows = transaction_export_rows(
            user=request.user, filters=filters, ordering=params["ordering"]
        )
        response = StreamingHttpResponse(
            transaction_csv_chunks(rows, zone=user_zone(request.user)),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = 'attachment; filename="transactions.csv"'
        response["Cache-Control"] = "private, no-store"
        return response

    def perform_content_negotiation(self, request, force=False):
        # The file is not a DRF rendering: a client asking for text/csv only must still get its
        # errors (as JSON, the one error shape) instead of a 406.
        return super().perform_content_negotiation(request, force=True)


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
        examples=[SUMMARY_EXAMPLE],
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

    @TRANSACTION_PATCH_SCHEMA
    def patch(self, request, transaction_id: int):
        # Category corrections live in banking.apis.categories (issue 17).
        return transaction_patch(request, transaction_id)
