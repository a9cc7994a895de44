"""Data volume per client: the default mix, or a heavy client for benchmarks."""

from datetime import date

from django.conf import settings

from sandbox.generator import DataKey
from sandbox.models import ClientVolume


def _heavy_from_settings() -> dict[str, tuple[int, int | None, int]]:
    """`client:per_year[:months[:checking accounts per bank]]`, comma-separated."""
    heavy = {}
    for part in settings.SANDBOX_HEAVY_CLIENTS.split(","):
        fields = part.strip().split(":")
        if len(fields) >= 2 and fields[1].isdigit():
            months = int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else None
            accounts = int(fields[3]) if len(fields) > 3 and fields[3].isdigit() else 0
            heavy[fields[0]] = (int(fields[1]), months, accounts)
    return heavy


def volume_for(client_id: str) -> tuple[int | None, int]:
    """(transactions per account per year or None for the default mix, months of history)."""
    row = ClientVolume.objects.filter(client_id=client_id).first()
    if row is not None:
        per_year, months = row.transactions_per_year, row.history_months
    else:
        per_year, months, _accounts = _heavy_from_settings().get(client_id, (None, None, 0))
    return per_year, months or settings.SANDBOX_HISTORY_MONTHS


def checking_accounts_for(client_id: str) -> int:
    """Checking accounts per bank a heavy client has at least (settings only; 0 = the layout's)."""
    return _heavy_from_settings().get(client_id, (None, None, 0))[2]


def set_client_volume(
    client_id: str, transactions_per_year: int | None, *, history_months: int | None = None
) -> None:
    """Make a client heavy (~N transactions per account per year); None restores the default."""
    if transactions_per_year is None:
        ClientVolume.objects.filter(client_id=client_id).delete()
        return
    ClientVolume.objects.update_or_create(
        client_id=client_id,
        defaults={
            "transactions_per_year": transactions_per_year,
            "history_months": history_months,
        },
    )


def data_key(client_id: str, anchor: date) -> DataKey:
    """Everything the client's generated data depends on (one query)."""
    per_year, months = volume_for(client_id)
    return DataKey(
        settings.SANDBOX_SEED, client_id, per_year, months, anchor, checking_accounts_for(client_id)
    )
