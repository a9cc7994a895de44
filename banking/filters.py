"""Filters, ordering and keyset cursor of the transaction feed (and of its CSV export).

The cursor is opaque to clients: URL-safe base64 of the last row's sort key and id. A page is
`WHERE key < cursor ORDER BY key DESC, id DESC LIMIT n` (ascending orderings mirror it). For the
default order the key is booking_date, which walks the `tx_user_feed` index, so page 1000 costs
what page 1 costs. For the amount orderings the key is |amount| and the id breaks ties: each row
still appears exactly once, but a page is a top-n sort of the filtered rows (no index orders by
amount), so it costs in proportion to the user's matching rows, not to the page's depth.

Text matching (search, merchant) compares `Fold(column)` with a term folded by
banking.textfold.fold: lowercase, ё → е, whitespace runs collapsed. SQLite calls that very Python
function (registered on every connection by BankingConfig.ready); PostgreSQL computes the same
in SQL, independent of the database's locale for ASCII and the Russian alphabet.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.db.models import F, Func, Q, QuerySet, TextField
from django.db.models.functions import Abs
from django.db.models.lookups import Contains, Exact, StartsWith

from banking.textfold import fold
from fintrack.core.exceptions import ValidationFailed
from fintrack.core.localtime import local_day_start

DEFAULT_ORDERING = "-date"
ORDERINGS = ("-date", "date", "-amount", "amount")
FOLD_SQL_FUNCTION = "fintrack_fold"

# What PostgreSQL needs to fold exactly like banking.textfold.fold, fast. lower() folds what the
# database's LC_CTYPE knows: the Russian alphabet under any UTF-8 locale, ASCII only under "C".
# Which one is known when the query is planned (lower() of a literal is folded to a constant),
# so the CASE below costs nothing per row: replace() of ё where lower() suffices, else
# translate() of the capitals, which is correct anywhere but ~4× slower (multibyte lookups).
_PG_UPPER = "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯё"
_PG_LOWER = "абвгдеежзийклмнопрстуфхцчшщъыьэюяе"
# Python's `\s` (str.isspace), spelled out: PostgreSQL's `\s` follows the locale and misses
# e.g. the no-break space U+00A0 that bank texts contain.
_PG_UNICODE_SPACE = r"\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_PG_SPACE = r"[\u0009-\u000d\u001c-\u0020" + _PG_UNICODE_SPACE + "]+"
# A text needs its whitespace collapsed only when it has a blank other than the space, two spaces
# in a row or a space at an end: one cheap test per row instead of a regexp_replace on each text.
_PG_ODD_SPACE = r"[\u0009-\u000d\u001c-\u001f" + _PG_UNICODE_SPACE + "]|  |^ | $"


class Fold(Func):
    """banking.textfold.fold(column) in SQL, the same on SQLite and PostgreSQL."""

    function = FOLD_SQL_FUNCTION
    arity = 1
    output_field = TextField()

    def as_postgresql(self, compiler, connection, **extra_context):
        text, params = compiler.compile(self.source_expressions[0])
        # Literals, not parameters: the expression stays immutable (usable in an index), and
        # none of them holds a quote or a percent sign. `text` appears five times, so do its
        # parameters (none for a column).
        lowered = (
            f"(CASE WHEN lower('АЁЯ') = 'аёя' THEN replace(lower({text}), 'ё', 'е') "
            f"ELSE translate(lower({text}), '{_PG_UPPER}', '{_PG_LOWER}') END)"
        )
        sql = (
            f"(CASE WHEN {text} ~ '{_PG_ODD_SPACE}' "
            f"THEN btrim(regexp_replace({lowered}, '{_PG_SPACE}', ' ', 'g'), ' ') "
            f"ELSE {lowered} END)"
        )
        return sql, (*params, *params, *params, *params, *params)


def sqlite_fold(value: str | None) -> str | None:
    """The SQLite function behind Fold: NULL stays NULL."""
    return None if value is None else fold(value)


@dataclass(frozen=True, slots=True)
class TransactionFilters:
    date_from: date | None = None
    date_to: date | None = None
    account_id: int | None = None
    bank_code: str | None = None
    category_codes: tuple[str, ...] = ()
    search: str = ""
    time_zone: str = "UTC"  # date_from / date_to are local days of this zone
    amount_min: Decimal | None = None  # on |amount|, inclusive
    amount_max: Decimal | None = None
    direction: str | None = None  # "in" (amount > 0) or "out" (amount < 0)
    merchant: str = ""  # the merchant as banking.textfold.merchant_display_name names it


@dataclass(frozen=True, slots=True)
class FeedCursor:
    id: int
    booking_date: datetime | None = None  # the key of the date orderings
    amount: Decimal | None = None  # |amount|, the key of the amount orderings
    ordering: str = DEFAULT_ORDERING


def cursor_encode(
    *,
    row_id: int,
    booking_date: datetime | None = None,
    amount: Decimal | None = None,
    ordering: str = DEFAULT_ORDERING,
) -> str:
    """The opaque cursor pointing just after the row with this key in `ordering`.

    `-date` cursors have the shape they had before orderings existed, so old ones stay valid.
    """
    payload: dict = {"i": row_id}
    if ordering in ("-date", "date"):
        payload["d"] = booking_date.astimezone(UTC).isoformat()
    else:
        payload["a"] = format(abs(amount), "f")
    if ordering != DEFAULT_ORDERING:
        payload["o"] = ordering
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def _bad_cursor(message: str) -> ValidationFailed:
    return ValidationFailed(f"cursor: {message}", extra={"fields": {"cursor": ["Invalid cursor."]}})


def cursor_decode(value: str, *, ordering: str = DEFAULT_ORDERING) -> FeedCursor:
    """Parse a cursor made by cursor_encode for `ordering`; anything else is a 400."""
    try:
        padded = value + "=" * (-len(value) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        issued_for = payload.get("o", DEFAULT_ORDERING)
        row_id = payload["i"]
        if issued_for not in ORDERINGS or not isinstance(row_id, int) or row_id < 1:
            raise ValueError("bad cursor fields")
        booking_date = amount = None
        if issued_for in ("-date", "date"):
            booking_date = datetime.fromisoformat(payload["d"])
            if booking_date.tzinfo is None:
                raise ValueError("naive cursor date")
            # In UTC, as issued: an offset the database cannot hold (−23:59) or an instant
            # outside the calendar (OverflowError) is a forged cursor, not a query.
            booking_date = booking_date.astimezone(UTC)
        else:
            if not isinstance(payload["a"], str):
                raise ValueError("bad cursor amount")
            amount = Decimal(payload["a"])
            if not amount.is_finite() or amount < 0:
                raise ValueError("bad cursor amount")
    except (
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        InvalidOperation,
        OverflowError,
        binascii.Error,
        UnicodeDecodeError,
    ) as exc:
        raise _bad_cursor(
            "not a cursor this API issued; use next_cursor from a previous page."
        ) from exc
    if issued_for != ordering:
        raise _bad_cursor(
            f"issued for ordering={issued_for}; pass the same ordering with it, or start over."
        )
    return FeedCursor(id=row_id, booking_date=booking_date, amount=amount, ordering=ordering)


def cursor_after_row(row, ordering: str) -> str:
    """The cursor pointing just after `row` (a Transaction) in `ordering`."""
    return cursor_encode(
        row_id=row.id, booking_date=row.booking_date, amount=row.amount, ordering=ordering
    )


def merchant_q(term: str) -> Q:
    """Rows whose merchant (banking.textfold.merchant_display_name) folds to `term`.

    That is the bank's merchant name up to any " - <City>", or, when the bank sent none, a
    description shaped "<Merchant> - <City>" (SPEC §17).
    """
    term = fold(term)
    merchant, description = Fold("merchant_name"), Fold("description")
    by_name = Q(Exact(merchant, term)) | Q(StartsWith(merchant, f"{term} - "))
    by_description = Q(Exact(merchant, "")) & Q(StartsWith(description, f"{term} - "))
    return by_name | by_description


def search_q(text: str) -> Q:
    """Rows whose description, merchant or counterparty contains `text`, folded."""
    term = fold(text)
    return (
        Q(Contains(Fold("description"), term))
        | Q(Contains(Fold("merchant_name"), term))
        | Q(Contains(Fold("counterparty"), term))
    )


def day_start_clamped(time_zone: str, day: date) -> datetime | None:
    """The instant local `day` starts, or None past the end of the calendar (after 9999-12-31).

    A day whose start is before the first instant Python holds (0001-01-01 in a zone east of
    UTC) starts at that first instant: the bound then holds every row, as it should.
    """
    try:
        return local_day_start(time_zone, day)
    except OverflowError:
        if day.year > 1:
            return None
        return datetime.min.replace(tzinfo=UTC)


def transactions_filter(queryset: QuerySet, filters: TransactionFilters) -> QuerySet:
    """Apply the feed filters; dates are inclusive local days of filters.time_zone.

    Dates at the ends of the calendar (from=0001-01-01, to=9999-12-31) are open bounds.
    """
    if filters.date_from:
        start = day_start_clamped(filters.time_zone, filters.date_from)
        queryset = queryset.none() if start is None else queryset.filter(booking_date__gte=start)
    if filters.date_to and filters.date_to < date.max:
        end = day_start_clamped(filters.time_zone, filters.date_to + timedelta(days=1))
        if end is not None:
            queryset = queryset.filter(booking_date__lt=end)
    if filters.account_id is not None:
        queryset = queryset.filter(account_id=filters.account_id)
    if filters.bank_code:
        queryset = queryset.filter(bank_code=filters.bank_code)
    if filters.category_codes:
        queryset = queryset.filter(category__code__in=filters.category_codes)
    if filters.direction == "in":
        queryset = queryset.filter(amount__gt=0)
    elif filters.direction == "out":
        queryset = queryset.filter(amount__lt=0)
    # Bounds on |amount| as plain ranges of the column: no expression per row.
    if filters.amount_min is not None and filters.amount_min > 0:
        queryset = queryset.filter(
            Q(amount__gte=filters.amount_min) | Q(amount__lte=-filters.amount_min)
        )
    if filters.amount_max is not None:
        queryset = queryset.filter(amount__gte=-filters.amount_max, amount__lte=filters.amount_max)
    if filters.merchant:
        queryset = queryset.filter(merchant_q(filters.merchant))
    if filters.search:
        queryset = queryset.filter(search_q(filters.search))
    return queryset


def transactions_order(queryset: QuerySet, ordering: str = DEFAULT_ORDERING) -> QuerySet:
    """The rows in `ordering`, ties broken by id in the same direction (a total order)."""
    descending = ordering.startswith("-")
    sort_key = F("booking_date") if ordering.endswith("date") else Abs("amount")
    keys = [sort_key, F("id")]
    return queryset.order_by(*[key.desc() if descending else key.asc() for key in keys])


def transactions_after(
    queryset: QuerySet, cursor: FeedCursor | None, ordering: str = DEFAULT_ORDERING
) -> QuerySet:
    """Rows strictly after the cursor in `ordering`, in that order."""
    if cursor is not None:
        descending = ordering.startswith("-")
        if ordering.endswith("date"):
            name, key = "booking_date", cursor.booking_date
        else:
            queryset = queryset.alias(amount_abs=Abs("amount"))
            name, key = "amount_abs", cursor.amount
        beyond, up_to = ("lt", "lte") if descending else ("gt", "gte")
        # `key <= cursor` is implied by the OR, but only stated on its own does PostgreSQL use
        # it as the range condition of the (user, -booking_date, -id) index: the scan starts at
        # the cursor instead of filtering every newer row (50,000 rows read for page 1,001
        # without it).
        queryset = queryset.filter(**{f"{name}__{up_to}": key}).filter(
            Q(**{f"{name}__{beyond}": key}) | Q(**{name: key, f"id__{beyond}": cursor.id})
        )
    return transactions_order(queryset, ordering)
