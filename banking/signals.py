"""What banking tells the apps above it, which it may not import (they connect in apps.py ready()).

`transactions_changed(user_id, since_date)`: a user's stored transactions changed from the local
day `since_date` on (None: from the first) and the daily aggregates already follow. Sent once the
database transaction that made the change commits; analytics answers by requesting a
recomputation of the user's snapshot.
"""

from django.db import transaction
from django.dispatch import Signal

transactions_changed = Signal()


def transactions_changed_on_commit(*, sender: object, user_id: int, since_date) -> None:
    """Send `transactions_changed` once the current database transaction commits (at once
    outside one)."""
    transaction.on_commit(
        lambda: transactions_changed.send(sender=sender, user_id=user_id, since_date=since_date)
    )
