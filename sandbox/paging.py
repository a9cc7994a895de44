"""Transaction pages as the live banks cut them: ORDER BY booking time only, LIMIT/OFFSET.

The banks sort by `bookingDateTime` with no unique tie-break (SPEC §17, "Booking times tie").
PostgreSQL answers `ORDER BY booking DESC LIMIT L OFFSET O` with a top-N heapsort (N = O + L)
whose order among equal keys depends on N. So one request always gets the same answer, but two
pages of one listing order a tie group differently: a group straddling the page boundary shows
some of its rows on both pages and others on neither. `meta.totalRecords` stays the true count.

`page_items` emulates that. Rows keep their booking-time order; inside a group of rows with the
same booking time the order is a permutation seeded by (salt, O + L, booking time). Only the
groups that overlap the page are read (the slice widened to their edges), so a page costs
O(limit + sizes of its edge groups), however long the history.
"""

import random

from sandbox.generator import History, Served

_SCAN_CHUNK = 16  # rows read per step while looking for a tie group's edge (doubles each step)


def page_items(history: History, *, offset: int, limit: int, salt: str) -> list[Served]:
    """Rows [offset, offset + limit) of `history` in the order a booking-time-only sort gives."""
    offset = max(offset, 0)
    total = len(history)
    stop = min(offset + limit, total)
    if offset >= stop:
        return []
    body = history.slice(offset, stop)
    head = _run_before(history, offset, body[0].record.booked_us)
    tail = _run_after(history, stop, total, body[-1].record.booked_us)
    window = head + body + tail
    ordered = _permute_ties(window, f"{salt}:{offset + limit}")
    return ordered[len(head) : len(head) + len(body)]


def _run_before(history: History, index: int, booked_us: int) -> list[Served]:
    """The rows just before `index` that share `booked_us` (the start of its tie group)."""
    found: list[Served] = []
    start, step = index, _SCAN_CHUNK
    while start > 0:
        chunk = history.slice(max(start - step, 0), start)
        cut = len(chunk)
        while cut > 0 and chunk[cut - 1].record.booked_us == booked_us:
            cut -= 1
        found[:0] = chunk[cut:]
        if cut > 0:
            break
        start -= len(chunk)
        step *= 2
    return found


def _run_after(history: History, index: int, total: int, booked_us: int) -> list[Served]:
    """The rows from `index` on that share `booked_us` (the end of its tie group)."""
    found: list[Served] = []
    start, step = index, _SCAN_CHUNK
    while start < total:
        chunk = history.slice(start, min(start + step, total))
        cut = 0
        while cut < len(chunk) and chunk[cut].record.booked_us == booked_us:
            cut += 1
        found.extend(chunk[:cut])
        if cut < len(chunk):
            break
        start += len(chunk)
        step *= 2
    return found


def _permute_ties(rows: list[Served], seed: str) -> list[Served]:
    """`rows` (booking time descending) with each group of equal times shuffled by `seed`."""
    ordered: list[Served] = []
    index, count = 0, len(rows)
    while index < count:
        booked_us = rows[index].record.booked_us
        end = index + 1
        while end < count and rows[end].record.booked_us == booked_us:
            end += 1
        if end - index == 1:
            ordered.append(rows[index])
        else:
            # Canonical order first, so the result depends on the seed only, not on the input.
            group = sorted(rows[index:end], key=lambda s: (s.record.transaction_id, s.pending))
            random.Random(f"{seed}:{booked_us}").shuffle(group)
            ordered.extend(group)
        index = end
    return ordered
