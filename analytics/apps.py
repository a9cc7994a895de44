"""Analytics app config: connects analytics' receivers of the lower apps' signals."""

from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"

    def ready(self) -> None:
        # banking sits below analytics and may not import it: it sends a signal, answered here.
        from analytics.receivers import recompute_on_transactions_changed
        from banking.signals import transactions_changed

        transactions_changed.connect(
            recompute_on_transactions_changed, dispatch_uid="analytics.recompute_on_transactions"
        )
