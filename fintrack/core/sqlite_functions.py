"""Python functions made available to SQL on SQLite connections (PostgreSQL has its own SQL).

SQLite's LOWER() and LIKE fold ASCII only, so text matching that must agree with PostgreSQL
(search in Russian, ё/е) calls a deterministic Python function registered here on every SQLite
connection Django opens. Apps register their functions in `AppConfig.ready`; this module imports
none of them.
"""

from collections.abc import Callable

from django.db import connections
from django.db.backends.signals import connection_created

_FUNCTIONS: dict[str, tuple[int, Callable]] = {}


def sqlite_function_register(*, name: str, function: Callable, num_args: int = 1) -> None:
    """Make `name(...)` call `function` in SQL on every SQLite connection, open or future."""
    _FUNCTIONS[name] = (num_args, function)
    connection_created.connect(_install, dispatch_uid="fintrack.core.sqlite_functions")
    for wrapper in connections.all(initialized_only=True):
        if wrapper.vendor == "sqlite" and wrapper.connection is not None:
            _create(wrapper.connection, name, num_args, function)


def _install(sender, connection, **kwargs) -> None:
    if connection.vendor != "sqlite":
        return
    for name, (num_args, function) in _FUNCTIONS.items():
        _create(connection.connection, name, num_args, function)


def _create(raw_connection, name: str, num_args: int, function: Callable) -> None:
    # deterministic: SQLite may then use the function in indexes and factor repeated calls out.
    raw_connection.create_function(name, num_args, function, deterministic=True)
