"""Own-account transfer pairing: a debit in one of the user's accounts and the matching credit in
another (even at another bank) within a few days are flagged, so they count as neither income nor
spending anywhere."""

from bisect import bisect_left
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import connection
from django.db import transaction as db_transaction
from django.db.models import Q

from banking.models import Transaction, TransactionCategory, TransactionStatus

# Only rows that could be a transfer take part: a purchase, a salary or a loan instalment with the
# same amount as some credit is not an own transfer.
TRANSFER_CANDIDATE_CODES = ("transfers", "other", "other_income")


def own_transfer_window_days() -> int:
    """How many days apart the two legs of an own transfer may be booked (settings, default 3)."""
    return int(settings.OWN_TRANSFER_WINDOW_DAYS)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def own_transfers_pair(*, user, since_date: date | None) -> int:
    """Pair the user's unpaired own transfers booked since since_date − window; returns pairs."""
    window = own_transfer_window_days()
    candidate_ids = list(
        TransactionCategory.objects.filter(code__in=TRANSFER_CANDIDATE_CODES).values_list(
            "id", flat=True
        )
    )
    rows = Transaction.objects.filter(user=user, transfer_pair__isnull=True).exclude(
        status=TransactionStatus.DECLINED
    )
    if since_date is not None:
        rows = rows.filter(booking_date__gte=_day_start(since_date - timedelta(days=window)))
    rows = rows.filter(Q(category_id__in=candidate_ids) | Q(category__isnull=True))
    columns = ("id", "account_id", "amount", "currency", "booking_date")
    debits, credits_by_key = [], defaultdict(list)
    for row in rows.order_by("booking_date", "id").values_list(*columns):
        if row[2] < 0:
            debits.append(row)
        elif row[2] > 0:
            credits_by_key[(row[3], row[2])].append(row)

    # Each amount's credits in booking order, with their booking times apart, so a debit looks
    # only at those booked within its window (a recurring amount has hundreds over the years).
    times_by_key = {
        key: [credit[4] for credit in credits] for key, credits in credits_by_key.items()
    }
    used: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for debit_id, debit_account, amount, currency, booked_at in debits:
        best = None
        key = (currency, -amount)
        credits = credits_by_key.get(key)
        if not credits:
            continue
        # The window is in whole UTC days either side of the debit's day (the rows' times are
        # UTC): from the start of day − window to the start of day + window + 1.
        day = booked_at.astimezone(UTC).date()
        times = times_by_key[key]
        first = bisect_left(times, _day_start(day - timedelta(days=window)))
        past = bisect_left(times, _day_start(day + timedelta(days=window + 1)))
        for credit_id, credit_account, _, _, credit_at in credits[first:past]:
            if credit_id in used or credit_account == debit_account:
                continue
            # Deterministic tie-break: the closest in time, then the lowest id.
            rank = (abs((credit_at - booked_at).total_seconds()), credit_id)
            if best is None or rank < best[0]:
                best = (rank, credit_id)
        if best is not None:
            used.add(best[1])
            pairs.append((debit_id, best[1]))

    if not pairs:
        return 0
    _pairs_store(pairs)
    return len(pairs)


# Pairs written per UPDATE (two rows each). A first sync pairs hundreds to thousands of rows:
# bulk_update's CASE id WHEN … over 500 ids per statement costs each row a scan of the whole
# CASE (quadratic; ~0.25 s for 1,600 rows); a join on a VALUES list finds each row's pair once.
_PAIRS_PER_UPDATE = 500


def _pairs_store(pairs: list[tuple[int, int]]) -> None:
    """Flag both legs of each (debit, credit) pair and point each at the other, in one
    transaction: UPDATE … FROM (VALUES (id, twin), …), on PostgreSQL and SQLite (≥ 3.33)."""
    table = Transaction._meta.db_table
    with db_transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(pairs), _PAIRS_PER_UPDATE):
            batch = pairs[start : start + _PAIRS_PER_UPDATE]
            legs = [leg for debit, credit in batch for leg in ((debit, credit), (credit, debit))]
            values = ", ".join(["(%s, %s)"] * len(legs))
            cursor.execute(
                f'UPDATE "{table}" SET "is_own_transfer" = %s, '  # noqa: S608 (names only)
                f'"transfer_pair_id" = v.column2 FROM (VALUES {values}) AS v '
                f'WHERE "{table}"."id" = v.column1',
                [True, *(number for leg in legs for number in leg)],
            )
