"""Serializers of the transactions API: query parameters in, feed items, CSV rows and summaries
out."""

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils import timezone
from rest_framework import serializers

from banking.categorization import merchant_and_city
from banking.filters import DEFAULT_ORDERING, ORDERINGS
from banking.models import BankCode, Transaction
from banking.serializers.common import MAX_ID, bank_code_field
from banking.textfold import merchant_display_name
from fintrack.core.localtime import local_date

MAX_SUMMARY_DAYS = 3660
PERIOD_DAYS = {"7d": 7, "30d": 30, "90d": 90}


def _check_range(attrs: dict) -> dict:
    date_from, date_to = attrs.get("date_from"), attrs.get("date_to")
    if date_from and date_to and date_from > date_to:
        raise serializers.ValidationError({"from": ["Must not be after 'to'."]})
    return attrs


def _amount_field(help_text: str) -> serializers.DecimalField:
    return serializers.DecimalField(
        required=False,
        max_digits=18,
        decimal_places=2,
        min_value=Decimal("0"),
        help_text=help_text,
    )


class TransactionListParamsSerializer(serializers.Serializer):
    """Query parameters of GET /api/transactions."""

    date_from = serializers.DateField(required=False, help_text="YYYY-MM-DD, inclusive, local.")
    date_to = serializers.DateField(required=False, help_text="YYYY-MM-DD, inclusive, local.")
    account_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    bank_code = serializers.ChoiceField(choices=BankCode.choices, required=False)
    category_code = serializers.CharField(
        required=False, max_length=200, help_text="A category code, or several comma-separated."
    )
    search = serializers.CharField(required=False, max_length=100, trim_whitespace=True)
    amount_min = _amount_field("Smallest |amount|, inclusive (a decimal with a dot).")
    amount_max = _amount_field("Largest |amount|, inclusive.")
    direction = serializers.ChoiceField(
        choices=["in", "out"], required=False, help_text="in: money in; out: money out."
    )
    merchant_name = serializers.CharField(
        required=False,
        max_length=100,
        trim_whitespace=True,
        help_text="A merchant's name, any case, ё or е (Пятёрочка - Москва is Пятёрочка).",
    )
    ordering = serializers.ChoiceField(
        choices=list(ORDERINGS), required=False, default=DEFAULT_ORDERING
    )
    cursor = serializers.CharField(required=False, max_length=200)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)

    def to_internal_value(self, data):
        # "from" is a Python keyword: accept it on the wire, name it date_from inside.
        data = {key: value for key, value in data.items()}
        for wire, name in (("from", "date_from"), ("to", "date_to")):
            if wire in data:
                data[name] = data.pop(wire)
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            detail = exc.detail
            if isinstance(detail, dict):
                for name, wire in (("date_from", "from"), ("date_to", "to")):
                    if name in detail:
                        detail[wire] = detail.pop(name)
            raise serializers.ValidationError(detail) from exc

    def validate(self, attrs):
        amount_min, amount_max = attrs.get("amount_min"), attrs.get("amount_max")
        if amount_min is not None and amount_max is not None and amount_min > amount_max:
            raise serializers.ValidationError(
                {"amount_min": ["Must not be greater than 'amount_max'."]}
            )
        return _check_range(attrs)


class TransactionExportParamsSerializer(TransactionListParamsSerializer):
    """Query parameters of GET /api/transactions/export.csv: the feed's, without paging."""

    cursor = None
    page_size = None


class TransactionSummaryParamsSerializer(TransactionListParamsSerializer):
    """Query parameters of GET /api/transactions/summary: a period, or from/to."""

    account_id = None
    bank_code = None
    category_code = None
    search = None
    amount_min = None
    amount_max = None
    direction = None
    merchant_name = None
    ordering = None
    cursor = None
    page_size = None
    period = serializers.ChoiceField(
        choices=["7d", "30d", "90d", "month"], required=False, default="30d"
    )

    def validate(self, attrs):
        attrs = _check_range(attrs)
        # The API passes the user's local today; periods end on it.
        today = self.context.get("today") or timezone.now().date()
        date_from, date_to = attrs.get("date_from"), attrs.get("date_to")
        if date_from or date_to:
            date_to = date_to or today
            date_from = date_from or date_to - min(timedelta(days=29), date_to - date.min)
            if date_from > date_to:
                raise serializers.ValidationError({"from": ["Must not be after 'to'."]})
            attrs["period"] = "custom"
        elif attrs["period"] == "month":
            date_from, date_to = today.replace(day=1), today
        else:
            date_to = today
            date_from = today - timedelta(days=PERIOD_DAYS[attrs["period"]] - 1)
        if (date_to - date_from).days + 1 > MAX_SUMMARY_DAYS:
            raise serializers.ValidationError(
                {"from": [f"The range may span at most {MAX_SUMMARY_DAYS} days."]}
            )
        attrs["date_from"], attrs["date_to"] = date_from, date_to
        return attrs


class CategoryOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    name_en = serializers.CharField()
    name_ru = serializers.CharField()


class TransactionOutputSerializer(serializers.ModelSerializer):
    account_id = serializers.IntegerField()
    bank_code = bank_code_field()
    merchant_name = serializers.SerializerMethodField(
        help_text="The merchant's name without the city: the bank's merchant object, or the "
        "'<Merchant>' of a '<Merchant> - <City>' description; empty when there is none."
    )
    city = serializers.SerializerMethodField(
        help_text="Where the purchase was made: the bank's location, or the '<City>' of the "
        "description."
    )
    category = CategoryOutputSerializer(allow_null=True)
    transfer_pair_id = serializers.IntegerField(allow_null=True)
    local_date = serializers.SerializerMethodField(
        help_text="The booking day in your time zone (booking_date is UTC); summaries use it."
    )

    class Meta:
        model = Transaction
        fields = [
            "id",
            "account_id",
            "bank_code",
            "amount",
            "currency",
            "booking_date",
            "local_date",
            "value_date",
            "status",
            "description",
            "merchant_name",
            "city",
            "merchant_category",
            "mcc",
            "category",
            "category_source",
            "note",
            "counterparty",
            "is_own_transfer",
            "transfer_pair_id",
        ]

    def get_merchant_name(self, obj) -> str:
        name, _city = merchant_and_city(obj.description or "", obj.merchant_name or "")
        return name or obj.merchant_name or ""

    def get_city(self, obj) -> str:
        return merchant_and_city(obj.description or "", obj.merchant_name or "")[1]

    def get_local_date(self, obj) -> date:
        # The API passes the user's zone in the context; without one, the default zone.
        return local_date(self.context.get("zone"), obj.booking_date)


class TransactionPageOutputSerializer(serializers.Serializer):
    results = TransactionOutputSerializer(many=True)
    next_cursor = serializers.CharField(
        allow_null=True, help_text="Pass as ?cursor= for the next page; null on the last page."
    )
    page_size = serializers.IntegerField()


# The API's names (issue 24): local_date/local_time are the booking's in the user's zone.
CSV_HEADER = (
    "id",
    "local_date",
    "local_time",
    "amount",
    "currency",
    "description",
    "merchant_name",
    "category_code",
    "category_name_ru",
    "counterparty",
    "bank_code",
    "account",
    "status",
)
# A spreadsheet runs a cell starting with one of these as a formula ("CSV injection"); bank texts
# are not ours to trust, so such a text cell gets a leading apostrophe. Amounts are not touched.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _text_cell(value: str) -> str:
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value


def transaction_csv_chunks(
    rows: Iterable[tuple], *, zone: ZoneInfo, rows_per_chunk: int = 1000
) -> Iterator[bytes]:
    """UTF-8 CSV of rows from transaction_export_rows: a BOM and the header first, then chunks of
    `rows_per_chunk` rows. Days and times are local to `zone`; amounts are signed decimals with
    a dot; lines end in CRLF (RFC 4180)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    # The BOM tells spreadsheet programs the file is UTF-8 (Excel guesses a legacy code page).
    buffer.write("\ufeff")
    writer.writerow(CSV_HEADER)
    for count, (
        row_id,
        booking_date,
        amount,
        currency,
        description,
        merchant_name,
        category_code,
        category_name,
        counterparty,
        bank_code,
        account_number,
        bank_account_id,
        status,
    ) in enumerate(rows, start=1):
        moment = booking_date.astimezone(zone)
        writer.writerow(
            (
                row_id,
                moment.date().isoformat(),
                moment.strftime("%H:%M:%S"),
                format(amount, "f"),
                currency,
                _text_cell(description),
                _text_cell(
                    merchant_display_name(merchant_name=merchant_name, description=description)
                ),
                category_code or "",
                category_name or "",
                _text_cell(counterparty),
                bank_code,
                account_number or bank_account_id,
                status,
            )
        )
        if count % rows_per_chunk == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


class SummaryCategoryOutputSerializer(serializers.Serializer):
    category_code = serializers.CharField()
    category_name_en = serializers.CharField()
    category_name_ru = serializers.CharField()
    category_kind = serializers.CharField()
    currency = serializers.CharField()
    income = serializers.DecimalField(max_digits=18, decimal_places=2)
    spending = serializers.DecimalField(max_digits=18, decimal_places=2)
    net = serializers.DecimalField(max_digits=18, decimal_places=2)
    count = serializers.IntegerField()


class SummaryDayOutputSerializer(serializers.Serializer):
    date = serializers.DateField(help_text="A local day (your profile's time_zone).")
    currency = serializers.CharField()
    income = serializers.DecimalField(max_digits=18, decimal_places=2)
    spending = serializers.DecimalField(max_digits=18, decimal_places=2)
    net = serializers.DecimalField(max_digits=18, decimal_places=2)
    count = serializers.IntegerField()


class SummaryMonthOutputSerializer(serializers.Serializer):
    month = serializers.CharField(help_text="YYYY-MM, a local calendar month.")
    currency = serializers.CharField()
    income = serializers.DecimalField(max_digits=18, decimal_places=2)
    spending = serializers.DecimalField(max_digits=18, decimal_places=2)
    net = serializers.DecimalField(max_digits=18, decimal_places=2)
    count = serializers.IntegerField()
    days_with_data = serializers.IntegerField(help_text="Local days of the month with any row.")
    days_in_month = serializers.IntegerField()
    complete = serializers.BooleanField(
        help_text=(
            "False for a month only partly covered: cut by the range, the first month of your "
            "history, or the current month. Partial months are not averaged as whole months."
        )
    )


class SummaryMonthlyAverageOutputSerializer(serializers.Serializer):
    months = serializers.IntegerField(help_text="Complete months averaged (0: no average).")
    currency = serializers.CharField()
    income = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)
    spending = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)
    net = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)


class SummaryCurrencyOutputSerializer(serializers.Serializer):
    currency = serializers.CharField()
    income = serializers.DecimalField(max_digits=18, decimal_places=2)
    spending = serializers.DecimalField(max_digits=18, decimal_places=2)
    net = serializers.DecimalField(max_digits=18, decimal_places=2)
    count = serializers.IntegerField()
    by_category = SummaryCategoryOutputSerializer(many=True)
    by_day = SummaryDayOutputSerializer(many=True, help_text="Local days.")
    by_month = SummaryMonthOutputSerializer(many=True, help_text="Local months of the range.")
    monthly_average = SummaryMonthlyAverageOutputSerializer(
        help_text="Averages over the complete months of the range only."
    )


class TransactionSummaryOutputSerializer(serializers.Serializer):
    period = serializers.CharField(help_text="7d | 30d | 90d | month | custom")
    date_from = serializers.DateField(
        source="date_from", help_text="First day, inclusive (your local day)."
    )
    date_to = serializers.DateField(source="date_to", help_text="Last day, inclusive (local).")
    time_zone = serializers.CharField(help_text="The time zone the days and months are in.")
    currencies = SummaryCurrencyOutputSerializer(many=True)

    def get_fields(self):
        # On the wire the range reads like the query: "from" and "to".
        fields = super().get_fields()
        fields["from"] = fields.pop("date_from")
        fields["to"] = fields.pop("date_to")
        return fields
