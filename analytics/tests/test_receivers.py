"""analytics answers banking's signals: changed transactions request a recomputation."""

from datetime import date

from banking.models import Transaction
from banking.signals import transactions_changed


def test_changed_transactions_request_a_recomputation_of_that_users_snapshot(monkeypatch):
    requested = []
    monkeypatch.setattr(
        "analytics.services.analytics_recompute_request",
        lambda *, user_id: requested.append(user_id),
    )

    transactions_changed.send(sender=Transaction, user_id=42, since_date=date(2025, 11, 2))

    assert requested == [42]
