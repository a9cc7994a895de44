"""What the sync calls once after a successful run: derived money data for one user.

The syncs of a user's banks finish together (onboarding starts three at once): the whole refresh
runs under the user's aggregates lock, so two of them take turns and the second one reads what
the first one committed, as if they had run one after the other.
"""

import logging
from datetime import date, timedelta

from django.db import transaction

from banking.services.accounts import account_summaries_refresh
from banking.services.agreements import agreement_payments_refresh
from banking.services.transactions import transaction_aggregates_recompute, user_aggregates_lock
from banking.transfers import own_transfer_window_days, own_transfers_pair

logger = logging.getLogger(__name__)


def money_refresh_after_sync(*, user, since_date: date | None) -> None:
    """Pair own transfers, rebuild aggregates from since_date, refresh totals and next payments."""
    # Held until the caller's transaction (the sync's finalize) commits, or this one's.
    with transaction.atomic():
        user_aggregates_lock(user_id=user.pk)
        _money_refresh(user=user, since_date=since_date)


def _money_refresh(*, user, since_date: date | None) -> None:
    pairs = own_transfers_pair(user=user, since_date=since_date)
    # Pairing may flag rows older than since_date (the window reaches back a few days): rebuild
    # from the earlier edge so those days stop counting the transfer as income or spending.
    aggregate_from = since_date
    if since_date is not None and pairs:
        aggregate_from = since_date - timedelta(days=own_transfer_window_days())
    if aggregate_from is not None:
        # since_date is a UTC day; aggregates are local days, up to one day earlier (UTC−12).
        aggregate_from -= timedelta(days=1)
    rows = transaction_aggregates_recompute(user=user, since_date=aggregate_from)
    account_summaries_refresh(user=user)
    debts = agreement_payments_refresh(user=user)
    logger.info(
        "money refresh user=%s since=%s: %s own-transfer pairs, %s aggregate rows, %s debts",
        user.pk,
        since_date,
        pairs,
        rows,
        debts,
    )
