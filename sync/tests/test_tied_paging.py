"""Rows tied on booking time across page boundaries (SPEC §17): none lost, none stored twice.

The banks sort pages by booking time only, under LIMIT/OFFSET: a tie group straddling a page
boundary may show a row on two pages and another on none, while `meta.totalRecords` stays right.
"""

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from banking.models import Account, BankConnection, Transaction
from banking.tests.factories import client_id_give, client_id_of
from sync.models import SyncRun, SyncStatus
from sync.reader import covering_page, reread_limits
from sync.services import sync_run_execute
from sync.tests import fakebank as fb

SECOND = timedelta(seconds=1)
T0 = datetime(2025, 11, 20, 12, 0, 0, 250_000, tzinfo=UTC)
TIE = T0 - 10 * SECOND  # the instant a group of rows shares


class TiedBank:
    """The transactions route over one listing (newest first, `totalRecords` true).

    Pages are cut from the listing as it is, except those in `served`: (page, limit) → the ids
    that page shows instead, as a booking-time-only sort may order a tie group on that page.
    `swap` replaces one id by another on every page (a row the bank never lists).
    """

    def __init__(self, items: list[dict], *, served=None, swap: tuple[str, str] | None = None):
        self.items = items
        self.by_id = {item["transactionId"]: item for item in items}
        self.served = served or {}
        self.swap = swap
        self.calls: list[tuple[int, int]] = []

    def __call__(self, request):
        query = parse_qs(urlparse(request.url).query)
        page, limit = int(query["page"][0]), int(query["limit"][0])
        self.calls.append((page, limit))
        if (page, limit) in self.served:
            rows = [self.by_id[i] for i in self.served[page, limit]]
        else:
            rows = self.items[(page - 1) * limit : page * limit]
        if self.swap is not None:
            hidden, shown = self.swap
            rows = [self.by_id[shown] if r["transactionId"] == hidden else r for r in rows]
        pages = -(-len(self.items) // limit)
        base = f"/accounts/{fb.ACCOUNT_ID}/transactions"
        links = {"self": f"{base}?page={page}&limit={limit}"}
        if page < pages:
            links["next"] = f"{base}?page={page + 1}&limit={limit}"
        meta = {
            "totalPages": pages,
            "totalRecords": len(self.items),
            "currentPage": page,
            "pageSize": limit,
        }
        body = {"data": {"transaction": rows}, "links": links, "meta": meta}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)


def _listing(newer: int, tied: int, older: int) -> list[dict]:
    """`newer` rows at distinct times, `tied` rows at TIE, then `older` distinct ones."""
    return (
        [fb.tx(f"n{n}", TIE + (newer - n) * SECOND) for n in range(newer)]
        + [fb.tx(f"t{n}", TIE) for n in range(tied)]
        + [fb.tx(f"o{n}", TIE - (n + 1) * SECOND) for n in range(older)]
    )


@pytest.fixture
def connection(db, user, settings):
    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 0
    # One pass over the listing, the calls of which these tests count (the progressive first
    # sync pauses and resumes its reads, a page's difference: sync/tests/test_progressive_*).
    settings.FIRST_SYNC_RECENT_DAYS = 0
    fb.authorised_consents(user)
    return BankConnection.objects.create(user=user, bank_code="vbank", client_id="team260-1")


def _run(
    connection, bank: TiedBank, *, first: bool = True, status: str = SyncStatus.SUCCEEDED
) -> SyncRun:
    run = fb.sync_with(connection, bank, products=first)
    assert run.status == status, run.error
    return run


def _stored_ids() -> list[str]:
    return sorted(Transaction.objects.values_list("bank_transaction_id", flat=True))


def _all_ids(bank: TiedBank) -> list[str]:
    return sorted(bank.by_id)


def _watermark():
    return Account.objects.get(bank_account_id=fb.ACCOUNT_ID).transactions_synced_through


# Positions 0–2 newer rows, 3–6 the tie group t0…t3, 7–9 older rows. With limit 5 the group
# straddles the boundary at 5: page 1 shows t0 t1, page 2 t1 t2 (t1 twice, t3 never).
LOSSY = {(1, 5): ["n0", "n1", "n2", "t0", "t1"], (2, 5): ["t1", "t2", "o0", "o1", "o2"]}


@pytest.mark.parametrize("batch_rows", [1000, 5])  # one write batch, or one per page
def test_a_straddling_tie_group_is_repaired_with_one_page_that_covers_it(
    connection, settings, batch_rows
):
    settings.SYNC_PAGE_LIMIT = 5
    settings.SYNC_WRITE_BATCH_ROWS = batch_rows
    bank = TiedBank(_listing(3, 4, 3), served=LOSSY)

    run = _run(connection, bank)

    # Group [3, 7): page 1 of limit 100 holds positions 0–99, so all of it.
    assert bank.calls == [(1, 5), (2, 5), (1, 100)]
    assert _stored_ids() == _all_ids(bank)  # t3 found, t1 stored once
    assert run.transactions_added == 10  # the repeated t1 is not counted as added twice
    assert run.transactions_updated == 0
    assert run.bank_calls == 2 + 3 + 2  # accounts, balances; three pages; catalogue, agreements
    assert _watermark() == TIE + 3 * SECOND
    assert run.warnings == []


def test_a_group_spanning_more_than_a_page_is_tracked_to_its_end(connection, settings):
    settings.SYNC_PAGE_LIMIT = 5
    # n0 n1 | t0…t11 | o0 o1: pages [n0 n1 t t t] [t t t t t] [t t t t o0] [o1]; group [2, 14).
    items = _listing(2, 12, 2)
    bank = TiedBank(
        items,
        served={
            (1, 5): ["n0", "n1", "t0", "t1", "t2"],
            (2, 5): ["t2", "t4", "t5", "t6", "t7"],  # t3 never listed, t2 twice
            (3, 5): ["t8", "t9", "t10", "t11", "o0"],
        },
    )

    _run(connection, bank)

    assert bank.calls == [(1, 5), (2, 5), (3, 5), (4, 5), (1, 100)]
    assert _stored_ids() == _all_ids(bank)


def test_a_group_larger_than_any_page_is_read_again_with_another_page_size(connection):
    # 10 newer rows, 105 tied ones (positions 10–114), 5 older: 120 in all, limit 100.
    items = _listing(10, 105, 5)
    ids = [item["transactionId"] for item in items]
    page_2 = [*ids[100:104], "t0", *ids[105:]]  # t94 (position 104) never listed, t0 twice
    bank = TiedBank(items, served={(2, 100): page_2})

    run = _run(connection, bank)

    # No page of ≤ 100 rows covers 105 tied rows: the read is repeated at limit 97 until the
    # distinct ids reach totalRecords (page 2 of 97 holds position 104).
    assert bank.calls == [(1, 100), (2, 100), (1, 97), (2, 97)]
    assert _stored_ids() == sorted(ids)
    assert run.transactions_added == 120
    assert _watermark() == TIE + 10 * SECOND


def test_a_row_the_bank_never_lists_keeps_the_watermark_and_is_reported(connection, settings):
    settings.SYNC_PAGE_LIMIT = 5
    bank = TiedBank(_listing(3, 4, 3), served=LOSSY, swap=("t3", "t0"))

    run = _run(connection, bank, status=SyncStatus.PARTIAL)  # never "succeeded" when short

    # The repair, then three re-reads (limits 2, 16, 22) all fall one short of 10.
    assert bank.calls == [
        (1, 5), (2, 5), (1, 100),
        (1, 2), (2, 2), (3, 2), (4, 2), (5, 2),
        (1, 16),
        (1, 22),
    ]  # fmt: skip
    assert _stored_ids() == sorted(set(_all_ids(bank)) - {"t3"})
    assert run.transactions_added == 9
    assert _watermark() is None  # the next run reads the whole account again
    incomplete = [w for w in run.warnings if w.get("incomplete")]
    assert len(incomplete) == 1
    assert incomplete[0]["account"] == fb.ACCOUNT_ID
    assert "9 of 10" in incomplete[0]["reason"]
    assert run.transactions_skipped == 0

    # The bank lists it at last: the next (full) run stores it and moves the watermark.
    again = _run(connection, TiedBank(_listing(3, 4, 3)), first=False)

    assert _stored_ids() == _all_ids(bank)
    assert again.transactions_added == 1
    assert _watermark() == TIE + 3 * SECOND
    assert again.warnings == []


def test_an_incremental_read_short_of_the_bank_count_keeps_the_watermark(connection, settings):
    settings.SYNC_PAGE_LIMIT = 5
    # Ten recent rows, then a hundred from ten days earlier (below the next run's overlap window).
    history = _listing(3, 4, 3) + [
        fb.tx(f"a{n}", TIE - timedelta(days=10) - n * SECOND) for n in range(100)
    ]
    _run(connection, TiedBank(history))
    watermark = _watermark()
    # A day later: 5 new rows, and a row the bank backdated below the window: an incremental
    # read never reaches it (nor do its re-reads), so the stored rows stay one short.
    new = [fb.tx(f"new{n}", T0 + timedelta(days=1) - n * SECOND) for n in range(3)]
    bank = TiedBank(new + history + [fb.tx("late", TIE - timedelta(days=30))])

    run = _run(connection, bank, first=False, status=SyncStatus.PARTIAL)

    # The window: pages 1–3 (page 3 reaches a0, below it); the tied rows t0…t3 are positions
    # 6–9, inside page 2. Then the window again at limits 2 (where they straddle 8, but pages 4
    # and 5 show four different rows: the whole group, no repair), 16 and 22, each to below the
    # window ("late" is position 113).
    assert bank.calls == [
        (1, 5), (2, 5), (3, 5),
        (1, 2), (2, 2), (3, 2), (4, 2), (5, 2), (6, 2), (7, 2),
        (1, 16),
        (1, 22),
    ]  # fmt: skip
    assert run.transactions_added == 3
    assert "late" not in _stored_ids()
    assert _watermark() == watermark  # not moved past rows it could not account for
    incomplete = [w for w in run.warnings if w.get("incomplete")]
    assert len(incomplete) == 1 and "113 of 114" in incomplete[0]["reason"]


def test_no_straddling_tie_costs_no_extra_call_full_or_incremental(connection, settings):
    settings.SYNC_PAGE_LIMIT = 5
    # Ties inside a page (positions 5–8 of page 2) need no repair: only boundaries matter.
    history = _listing(5, 4, 3) + [
        fb.tx(f"a{n}", TIE - timedelta(days=10) - n * SECOND) for n in range(8)
    ]
    bank = TiedBank(history)

    first = _run(connection, bank)

    assert bank.calls == [(1, 5), (2, 5), (3, 5), (4, 5)]
    assert first.transactions_added == 20
    assert first.warnings == []

    again = TiedBank(history)
    second = _run(connection, again, first=False)

    assert again.calls == [(1, 5), (2, 5), (3, 5)]  # page 3 reaches below the overlap window
    assert (second.transactions_added, second.transactions_updated) == (0, 0)
    assert second.bank_calls == 2 + 3 + 1
    assert _watermark() == TIE + 5 * SECOND


def test_covering_page_and_reread_limits():
    assert covering_page(3, 7, 100) == (1, 100)
    assert covering_page(99, 101, 100) == (2, 99)  # positions 99–100: page 2 of 99 is 99–197
    for start, end in ((95, 103), (190, 230), (9_950, 10_012)):
        page, limit = covering_page(start, end, 100)
        assert (page - 1) * limit <= start and end <= page * limit <= (page - 1) * limit + 100
    assert covering_page(10, 115, 100) is None  # 105 rows: no page holds them
    assert reread_limits(100, 100) == [97, 89, 83]
    assert reread_limits(5, 100) == [2, 16, 22]
    assert all(1 <= size <= 100 and size != 3 for size in reread_limits(3, 100))


def _tracked(
    limit: int, pages: list[list[datetime]], *, distinct: bool = False, starts=None
) -> list[tuple[int, int]]:
    """Straddling groups the tracker would repair. Rows are named by their booking time, so a
    group seen on two pages repeats an id (a row was lost) — unless `distinct`, where every row
    has its own id (the permutations happened to show the whole group). Pages follow each other
    (page N at (N-1)·limit) unless `starts` gives each page's first position (pages of `limit`
    rows that may overlap, as the page plan asks for them)."""
    from types import SimpleNamespace

    from banking.clients.types import TransactionPage
    from sync.reader import _TieTracker

    tracker = _TieTracker()
    for number, booked in enumerate(pages, start=1):
        start = (number - 1) * limit if starts is None else starts[number - 1]
        rows = [
            SimpleNamespace(transaction_id=f"{number}:{i}" if distinct else when.isoformat())
            for i, when in enumerate(booked)
        ]
        page = TransactionPage(
            transactions=rows, page=number, total_pages=len(pages), total_records=None,
            has_next=number < len(pages),
        )  # fmt: skip
        tracker.add(start, limit, page, booked)
    return [(group.start, group.end) for group in tracker.straddling]


def test_a_straddling_group_seen_whole_needs_no_repair():
    a, b, c = (TIE - n * SECOND for n in range(3))
    # b straddles the boundary, but its two positions show two different rows: the whole group.
    assert _tracked(2, [[a, b], [b, c]], distinct=True) == []
    assert _tracked(2, [[a, b], [b, c]]) == [(1, 3)]


def test_tie_tracker_finds_each_straddling_group_and_its_positions():
    a, b, c, d, e = (TIE - n * SECOND for n in range(5))
    # A group that fills page 2 and ends exactly at page 3's first row.
    assert _tracked(2, [[a, b], [b, b], [c, d]]) == [(1, 4)]
    # Straddling boundaries 3 and 6, and ties inside a page that straddle nothing.
    assert _tracked(3, [[a, b, b], [b, c, c], [c, d, d], [e]]) == [(1, 4), (4, 7)]
    assert _tracked(3, [[a, a, b], [c, d, d], [e]]) == []
    # A group through the last page.
    assert _tracked(2, [[a, b], [b, b]]) == [(1, 4)]


def test_a_page_that_begins_at_or_before_a_group_holds_it_whole():
    a, b, c, d = (TIE - n * SECOND for n in range(4))
    # [a b b] then a page of 3 from position 1: [b b c] shows the group [1, 3) whole.
    assert _tracked(3, [[a, b, b], [b, b, c], [c, d]], starts=[0, 1, 3]) == []
    # From position 2 it does not hold the group [1, 4) whole: positions 1–2 and 2–3 seen on
    # two pages, and (rows named by instant) fewer rows than positions: one was lost.
    assert _tracked(3, [[a, b, b], [b, b, c]], starts=[0, 2]) == [(1, 4)]
    assert _tracked(3, [[a, b, b], [b, b, c]], starts=[0, 2], distinct=True) == []
    # A group at the end of a page, ending where the next one begins, was held whole by it.
    assert _tracked(3, [[a, b, b], [c, d, d]], starts=[0, 3]) == []
    # Rows at the group's positions that are not of its instant: the listing moved (the
    # completeness check decides, no repair is guessed).
    assert _tracked(3, [[a, b, b], [c, c, d]], starts=[0, 2]) == []


# --- End to end: the sandbox banks, a history where each day's rows share one booking time -----


def _tie_each_day(monkeypatch) -> None:
    """Every row of a day booked at that day's first instant (what the bank serves and the
    ground truth both read through sandbox.data.history)."""
    from sandbox import data
    from sandbox.generator import DAY_US, History, Served

    original = data.history

    def tied(key, account, now):
        real = original(key, account, now)
        return History(
            [Served(s.record._replace(booked_us=s.record.booked_us // DAY_US * DAY_US), s.pending)
             for s in real.recent],
            tuple(r._replace(booked_us=r.booked_us // DAY_US * DAY_US) for r in real.prefix),
            real.total,
        )  # fmt: skip

    monkeypatch.setattr(data, "history", tied)


def _naive_read_loses_rows(user, bank_code: str, limit: int) -> bool:
    """Whether plain paging (no repair) of the sandbox misses a row of some account."""
    from django.conf import settings as django_settings

    from sandbox import clock, data, paging
    from sandbox.volume import data_key

    state = clock.state()
    key = data_key(client_id_of(user=user, bank_code=bank_code), state.anchor)
    for account in data.bank_layout(key, bank_code).accounts:
        history = data.history(key, account, state.now)
        salt = f"{django_settings.SANDBOX_SEED}:{account.bank}:{account.account_id}"
        read = {
            served.record.transaction_id
            for offset in range(0, len(history), limit)
            for served in paging.page_items(history, offset=offset, limit=limit, salt=salt)
        }
        if len(read) < len(history):
            return True
    return False


@pytest.mark.django_db(transaction=True)
def test_sandbox_with_tied_days_syncs_to_exactly_its_ground_truth(
    sandbox_banks, user, settings, monkeypatch
):
    from audit.models import Direction, RawApiLog
    from banking.services.connections import connection_get_or_create
    from consents import services as consent_services
    from consents.models import ConsentKind, ConsentStatus
    from sync.tests.ground_truth import assert_equals_ground_truth

    client_id_give(user=user, client_id="team260-1", bank_codes=["vbank"])
    settings.SYNC_PAGE_LIMIT = 7  # many page boundaries, most of them inside a day's rows
    settings.FIRST_SYNC_RECENT_DAYS = 0  # one pass (the progressive first sync is tested apart)
    _tie_each_day(monkeypatch)
    assert _naive_read_loses_rows(user, "vbank", 7), "the tied sandbox should lose rows"
    for kind in (ConsentKind.ACCOUNTS, ConsentKind.PRODUCTS):
        consent = consent_services.consent_ensure(user=user, bank_code="vbank", kind=kind)
        if consent.status == ConsentStatus.PENDING:
            consent = consent_services.consent_approve_demo(consent=consent)
        assert consent.status == ConsentStatus.AUTHORIZED
    connection = connection_get_or_create(user=user, bank_code="vbank")

    def sync() -> SyncRun:
        run = SyncRun.objects.create(connection=connection, user_id=connection.user_id)
        sync_run_execute(sync_run_id=run.pk)
        run.refresh_from_db()
        assert run.status == SyncStatus.SUCCEEDED, run.error
        return run

    first = sync()

    truth = assert_equals_ground_truth(user=user, bank_code="vbank")
    total = sum(len(items) for items in truth["transactions"].values())
    assert first.transactions_added == total  # every row once, none counted twice
    assert not [w for w in first.warnings if w.get("incomplete")]
    endpoints = list(
        RawApiLog.objects.filter(
            correlation_id=str(first.correlation_id), direction=Direction.REQUEST
        ).values_list("endpoint", flat=True)
    )
    sizes = [int(e.rsplit("&limit=", 1)[1]) for e in endpoints if "/transactions" in e]
    # Pages of 7 rows, and of fewer where one begins at or before a day's tied rows to hold them
    # whole (the page plan; sync/tests/test_tied_paging_calls.py counts the calls).
    assert 7 in sizes and any(size < 7 for size in sizes)
    accounts = Account.objects.filter(user=user, bank_code="vbank")
    assert all(
        a.transactions_synced_through is not None
        for a in accounts
        if truth["transactions"][a.bank_account_id]
    )

    second = sync()

    assert (second.transactions_added, second.transactions_updated) == (0, 0)
    assert not [w for w in second.warnings if w.get("incomplete")]
    assert_equals_ground_truth(user=user, bank_code="vbank")
