"""Sync app config: connects sync's receivers of the lower apps' signals."""

from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "sync"

    def ready(self) -> None:
        # consents sits below sync and may not import it: it asks with a signal, answered here.
        from consents.signals import consent_in_use
        from sync.receivers import sync_running_for_bank

        consent_in_use.connect(sync_running_for_bank, dispatch_uid="sync.sync_running_for_bank")
