"""The batched delete every retention job uses (raw logs, audit events, and the upper apps'
snapshots and runs: audit is the lowest app that holds data, so they all may import it).

A purge never holds a table for long: it selects at most `batch_size` primary keys, deletes
them in one short transaction of their own, and goes on, however big the backlog.
"""

from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from typing import Any

from django.db import transaction
from django.db.models import Model, Q, QuerySet


def delete_in_batches(
    rows: QuerySet, *, batch_size: int, narrow: Q | None = None, using: str = "default"
) -> int:
    """Delete every row of `rows`, `batch_size` primary keys per DELETE; the rows deleted.

    `narrow` is added to each DELETE beside the keys: the partition key, so PostgreSQL only
    looks in the partitions that can hold them.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    model = rows.model
    label = model._meta.label
    deleted_total = 0
    while True:
        ids = list(rows.values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        deleted_total += delete_ids(model, ids, narrow=narrow, using=using, label=label)
        if len(ids) < batch_size:
            break
    return deleted_total


def delete_ids(
    model: type[Model],
    ids: list[Any],
    *,
    narrow: Q | None = None,
    using: str = "default",
    label: str | None = None,
) -> int:
    """Delete the rows of `model` with these primary keys in one short transaction; the count
    of the model's own rows deleted (rows a foreign key sets to null are not counted)."""
    target = model._base_manager.using(using).filter(pk__in=ids)
    if narrow is not None:
        target = target.filter(narrow)
    with transaction.atomic(using=using):
        _total, by_model = target.delete()
    return by_model.get(label or model._meta.label, 0)


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """`items` in lists of at most `size`."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def keyset_ids(rows: QuerySet, *, size: int) -> Iterator[list[Any]]:
    """The primary keys of `rows` in ascending order, `size` at a time (keyset pagination: each
    batch is one indexed query, whatever the table's size)."""
    last = None
    while True:
        page = rows.order_by("pk")
        if last is not None:
            page = page.filter(pk__gt=last)
        ids = list(page.values_list("pk", flat=True)[:size])
        if not ids:
            return
        yield ids
        last = ids[-1]
        if len(ids) < size:
            return


def utc_day(moment: datetime) -> date:
    """The UTC calendar day of an aware datetime (the days retention keeps one row of)."""
    return moment.astimezone(UTC).date()
