"""Analytics' answers to the events of the apps below it (connected in AnalyticsConfig.ready)."""

from analytics import services


def recompute_on_transactions_changed(sender, *, user_id: int, **kwargs) -> None:
    """banking.signals.transactions_changed: the user's transactions changed, so request a
    (debounced) recomputation of their snapshot."""
    services.analytics_recompute_request(user_id=user_id)
