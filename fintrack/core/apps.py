from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "fintrack.core"
    label = "core"
    verbose_name = "FinTrack core"

    def ready(self) -> None:
        from django.conf import settings

        if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
            from fintrack.core.db import register_fast_list_dumper

            register_fast_list_dumper()
