"""psycopg adaptation tuned for how Django 5.2 writes bulk inserts on PostgreSQL, and binary COPY
for the bulk writes that need no ORM."""

import functools
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import connections
from psycopg.types.array import ListDumper


class FastListDumper(ListDumper):
    """psycopg's text array dumper, escaping elements with bytes.replace instead of a regex.

    Django 5.2's bulk_create sends each column as one array (INSERT … SELECT * FROM UNNEST(…)),
    so every JSON document of an upsert (a transaction's raw_json, a raw-log payload) is escaped
    as an array element. psycopg does that with `re.sub(rb'(["\\])', rb"\\\1")`, which on Python
    3.11 expands the template in Python for each of a document's many quotes: 3 s of a 14k-row
    sync's 5 s upsert. Same output, C-speed replace.
    """

    def _dump_list(
        self, obj: list[Any], tokens: list, needs_quotes: Callable[[Any], object]
    ) -> None:
        if not obj:
            tokens.append(b"{}")
            return
        dump = self.sub_dumper.dump if self.sub_dumper else self._dump_item
        delimiter = self.delimiter
        tokens.append(b"{")
        for item in obj:
            if item is None:
                tokens.append(b"NULL")
            elif isinstance(item, list):
                self._dump_list(item, tokens, needs_quotes)
            elif (dumped := dump(item)) is None:
                tokens.append(b"NULL")
            else:
                if needs_quotes(dumped):
                    escaped = bytes(dumped).replace(b"\\", b"\\\\").replace(b'"', b'\\"')
                    dumped = b'"' + escaped + b'"'
                tokens.append(dumped)
            tokens.append(delimiter)
        tokens[-1] = b"}"


def register_fast_list_dumper() -> None:
    """Use FastListDumper for Python lists on every psycopg connection opened from now on."""
    import psycopg

    psycopg.adapters.register_dumper(list, FastListDumper)


def commit_without_wal_wait(using: str = "default") -> None:
    """Inside an atomic block on PostgreSQL, let this transaction's COMMIT skip the WAL flush wait.

    Only for writes that can be lost in a server crash without harm: the last few hundred ms of
    such commits may vanish, never partially, and the database stays consistent. A no-op
    elsewhere, outside an atomic block (SET LOCAL would not outlive the statement) and in a nested
    one (it would change the commit of an enclosing transaction its caller does not own).
    """
    connection = connections[using]
    if connection.vendor != "postgresql" or len(connection.atomic_blocks) != 1:
        return
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")


def copy_rows(
    model, columns: Sequence[str], rows: Iterable[tuple], *, using: str = "default"
) -> None:
    """COPY tuples (in `columns` order) into the model's table in binary format (PostgreSQL).

    No model instances and no SQL compiled per row: for the sync's bulk writes. Numbers and
    timestamps go as PostgreSQL's own bytes. A `json` column (VerbatimJSONField) takes bytes, the
    document's UTF-8 text, which the server validates. The caller owns the transaction; errors
    come out as Django's.
    """
    connection = connections[using]
    sql = f'COPY "{model._meta.db_table}" ({", ".join(columns)}) FROM STDIN (FORMAT BINARY)'
    started = time.monotonic()
    # psycopg's own cursor: Django's wrapper has no copy().
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(sql) as copy,
    ):
        copy.set_types(_copy_types(model, tuple(columns), connection.alias))
        for row in rows:
            copy.write_row(row)
    if connection.queries_logged:
        # Listed with the ORM's queries (DEBUG, the tests' query counts), as Django's debug
        # cursor would list it.
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})


@functools.cache
def _copy_types(model, columns: tuple[str, ...], using: str) -> list[str]:
    """How psycopg sends each column: the model's type ("varchar(16)" → "varchar").

    `json` goes as bytea: in a binary COPY a json value is just its text, so the bytes a caller
    serialised are sent untouched, with no Python dumper per row.
    """
    connection = connections[using]
    fields = {field.column: field for field in model._meta.concrete_fields}
    types = [fields[column].db_type(connection).split("(")[0] for column in columns]
    return ["bytea" if db_type == "json" else db_type for db_type in types]
