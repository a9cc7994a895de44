from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "users"
    verbose_name = "Users and onboarding"

    def ready(self) -> None:
        from users.onboarding.receivers import receivers_connect

        receivers_connect()
