"""Own-account transfer pairing: a debit in one of the user's accounts and the matching credit in
another (even at another bank) within a few days are flagged, so they count as neither income nor
spending anywhere."""

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
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

    used: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for debit_id, debit_account, amount, currency, booked_at in debits:
        best = None
        for credit_id, credit_account, _, _, credit_at in credits_by_key.get(
            (currency, -amount), ()
        ):
            if credit_id in used or credit_account == debit_account:
                continue
            if abs((credit_at.date() - booked_at.date()).days) > window:
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
    updates = []
    for debit_id, credit_id in pairs:
        updates.append(Transaction(id=debit_id, is_own_transfer=True, transfer_pair_id=credit_id))
        updates.append(Transaction(id=credit_id, is_own_transfer=True, transfer_pair_id=debit_id))
    with db_transaction.atomic():
        Transaction.objects.bulk_update(
            updates, ["is_own_transfer", "transfer_pair"], batch_size=500
        )
    return len(pairs)
