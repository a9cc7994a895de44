from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "fintrack.core"
    label = "core"
    verbose_name = "FinTrack core"
