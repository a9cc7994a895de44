"""Account reads, always scoped to the requesting user."""

from django.db.models import QuerySet

from banking.models import Account, AccountSummary, BalanceSnapshot
from fintrack.core.exceptions import NotFound

BALANCE_HISTORY_LIMIT = 90


def account_list(*, user) -> QuerySet[Account]:
    """The user's accounts (active first), with their latest balance on the row."""
    return Account.objects.filter(user=user).order_by("-is_active", "bank_code", "id")


def account_get(*, user, account_id: int) -> Account:
    """One of the user's accounts; another user's or an unknown id is simply not found."""
    account = Account.objects.filter(user=user, id=account_id).first()
    if account is None:
        raise NotFound("No such account.", extra={"account_id": account_id})
    return account


def account_summary_list(*, user) -> QuerySet[AccountSummary]:
    """The user's per-currency totals, as refreshed after the last sync."""
    return AccountSummary.objects.filter(user=user).order_by("currency")


def balance_history(
    *, account: Account, limit: int = BALANCE_HISTORY_LIMIT
) -> list[BalanceSnapshot]:
    """The account's balance readings, newest first, at most `limit`."""
    return list(BalanceSnapshot.objects.filter(account=account).order_by("-as_of", "-id")[:limit])
