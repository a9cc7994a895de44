"""psycopg adaptation tuned for how Django 5.2 writes bulk inserts on PostgreSQL, binary COPY for
the bulk writes that need no ORM, and keyset-chunked reads that stay in bounded memory without a
server-side cursor (none behind PgBouncer)."""

import functools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import connections
from django.db.models import Q, QuerySet
from django.db.models.query import (
    FlatValuesListIterable,
    ModelIterable,
    NamedValuesListIterable,
    ValuesIterable,
    ValuesListIterable,
)
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


def keyset_chunks(
    queryset: QuerySet, *, key_fields: Sequence[str], chunk_size: int
) -> Iterator[list]:
    """The queryset's rows ordered by `key_fields`, as lists of at most `chunk_size` rows.

    Why not QuerySet.iterator(): it streams through a server-side cursor, which PgBouncer's
    transaction pooling cannot keep (DISABLE_SERVER_SIDE_CURSORS), and without one psycopg
    fetches the whole result set into memory. Here each chunk is its own query, `WHERE key >
    the last row's key ORDER BY key LIMIT chunk_size` (keyset paging): memory holds one chunk,
    on every backend and behind any pooler. Inside a transaction the chunks share its snapshot
    (REPEATABLE READ on PostgreSQL sees one state of the database across them); in autocommit
    each chunk sees the database as it is when read.

    `key_fields` are the model's own fields (name or attname, "-" for descending), the last the
    primary key so that the order is total and every row comes exactly once. They must be in the
    rows: keys of values() dicts, names given to values_list(), attributes of instances. NULLs
    sort where the backend puts them (PostgreSQL: as the largest value; SQLite: the smallest),
    as in order_by() of the same columns. A chunk shorter than `chunk_size` ends the read (no
    extra query for the empty rest).
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    if queryset.query.is_sliced:
        raise ValueError("keyset_chunks reads the whole queryset: slice the chunks instead")
    opts = queryset.model._meta
    keys = [_keyset_key(opts, spec) for spec in key_fields]
    if not keys or keys[-1][0] != opts.pk.attname:
        raise ValueError(f"the last key field must be the primary key ({opts.pk.attname})")
    key_of = _keyset_key_reader(queryset, [name for name, _, _ in keys])
    nulls_largest = connections[queryset.db].features.nulls_order_largest
    # By column: order_by() of a foreign key's name would sort by the related model's ordering.
    ordered = queryset.order_by(*[f"-{name}" if desc else name for name, desc, _ in keys])
    after: Q | None = None
    while True:
        page = ordered if after is None else ordered.filter(after)
        chunk = list(page[:chunk_size])
        if not chunk:
            return
        last = key_of(chunk[-1])
        done = len(chunk) < chunk_size
        yield chunk
        if done:
            return
        del chunk  # one chunk in memory at a time, not the old one beside the next
        after = _keyset_after(keys, last, nulls_largest=nulls_largest)


def _keyset_key(opts, spec: str) -> tuple[str, bool, bool]:
    """(attname, descending, nullable) of one key field."""
    descending = spec.startswith("-")
    name = spec.removeprefix("-")
    try:
        field = opts.pk if name == "pk" else opts.get_field(name)
    except FieldDoesNotExist as exc:
        raise ValueError(f"key field {name!r} is not a field of {opts.label}") from exc
    if not getattr(field, "concrete", False) or getattr(field, "many_to_many", False):
        raise ValueError(f"key field {name!r} is not a column of {opts.label}")
    return field.attname, descending, field.null


def _keyset_key_reader(queryset: QuerySet, names: list[str]) -> Callable[[Any], tuple]:
    """A function reading the key values from one of the queryset's rows."""
    iterable = queryset._iterable_class
    if issubclass(iterable, ModelIterable):
        return lambda row: tuple(getattr(row, name) for name in names)
    # The names values()/values_list() were given (not in Django's stubs); none for values() of
    # every column, whose dicts are keyed by attname.
    fields = list(getattr(queryset, "_fields", None) or ())
    missing = [name for name in names if fields and name not in fields]
    if missing:
        raise ValueError(f"the rows must hold the key fields {missing} (by attname)")
    if iterable is ValuesIterable:
        return lambda row: tuple(row[name] for name in names)
    if iterable is FlatValuesListIterable and fields == names:
        return lambda row: (row,)
    if iterable in (ValuesListIterable, NamedValuesListIterable) and fields:
        positions = [fields.index(name) for name in names]
        return lambda row: tuple(row[position] for position in positions)
    raise ValueError(f"cannot read the key fields from rows of {iterable.__name__}")


def _keyset_after(keys: list[tuple[str, bool, bool]], last: tuple, *, nulls_largest: bool) -> Q:
    """The rows after `last` in the keys' order: (k1 after v1) OR (k1 = v1 AND k2 after v2) …

    With, on its own, `k1 >= v1` (`<=` descending) when the first key is not NULL-able: only
    stated separately does PostgreSQL use it as the range condition of an index on the keys
    (as banking.filters.transactions_after does).
    """
    condition = Q()
    equal_so_far = Q()
    for (name, descending, nullable), value in zip(keys, last, strict=True):
        nulls_last = nulls_largest != descending
        if value is None:
            beyond = None if nulls_last else Q(**{f"{name}__isnull": False})
            equal = Q(**{f"{name}__isnull": True})
        else:
            beyond = Q(**{f"{name}__{'lt' if descending else 'gt'}": value})
            if nullable and nulls_last:
                beyond |= Q(**{f"{name}__isnull": True})
            equal = Q(**{name: value})
        if beyond is not None:
            condition |= equal_so_far & beyond
        equal_so_far &= equal
    name, descending, nullable = keys[0]
    if last[0] is not None and not nullable:
        return Q(**{f"{name}__{'lte' if descending else 'gte'}": last[0]}) & condition
    return condition
