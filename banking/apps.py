from django.apps import AppConfig


class BankingConfig(AppConfig):
    name = "banking"

    def ready(self) -> None:
        from banking.filters import FOLD_SQL_FUNCTION, sqlite_fold
        from fintrack.core.sqlite_functions import sqlite_function_register

        # Search and merchant matching fold text in SQL; SQLite has no such function of its own.
        sqlite_function_register(name=FOLD_SQL_FUNCTION, function=sqlite_fold)
