"""The bank calls a read of tied booking times costs (SPEC §17): the page plan's pages, plus one
repair page only for a tie group those pages really lost a row of.

The live-style sandbox ties most of a day's card rows on one instant, so a plain grid of pages
cuts a tie group at about half its boundaries and nearly each cut loses a row. The reader's page
plan (sync.reader.PagePlan) begins a page at or before the tied rows the page before ended in, so
that page holds their group whole, and a repair page is left for what it could not hold.
"""

import threading
from itertools import pairwise

import pytest

from banking.clients.accounts import AccountsMixin
from banking.models import BankConnection, Transaction
from banking.tests.factories import client_id_give
from sync.models import SyncRun, SyncStatus
from sync.services import sync_run_execute
from sync.tests import fakebank as fb
from sync.tests.test_tied_paging import SECOND, TIE, TiedBank, _listing


def _positions(page: int, limit: int) -> range:
    return range((page - 1) * limit, page * limit)


def _groups_lost(history, salt: str, pages: list[tuple[int, int]]) -> list[range]:
    """Positions of the tie groups of which `pages` (as the sandbox serves them) never show
    some row: worked out from the sandbox's own listing, not from the reader."""
    from sandbox import paging

    shown: dict[int, set[str]] = {}
    for page, limit in pages:
        for served in paging.page_items(history, offset=(page - 1) * limit, limit=limit, salt=salt):
            shown.setdefault(served.record.booked_us, set()).add(served.record.transaction_id)
    rows = history.slice(0, len(history))
    lost, start = [], 0
    while start < len(rows):
        booked_us = rows[start].record.booked_us
        end = start + 1
        while end < len(rows) and rows[end].record.booked_us == booked_us:
            end += 1
        if end - start > 1 and len(shown.get(booked_us, ())) < end - start:
            lost.append(range(start, end))
        start = end
    return lost


@pytest.mark.django_db(transaction=True)
def test_a_tied_sandbox_account_costs_its_planned_pages_and_a_repair_only_per_group_lost(
    sandbox_banks, user, settings, monkeypatch
):
    from django.conf import settings as django_settings

    from banking.services.connections import connection_get_or_create
    from consents import services as consent_services
    from consents.models import ConsentKind, ConsentStatus
    from sandbox import clock, data
    from sandbox.volume import data_key, set_client_volume
    from sync.tests.ground_truth import assert_equals_ground_truth

    settings.SYNC_PAGE_LIMIT = 100
    settings.FIRST_SYNC_RECENT_DAYS = 0  # one pass (the progressive first sync is tested apart)
    client_id_give(user=user, client_id="team260-1", bank_codes=["vbank"])
    set_client_volume("team260-1", 4000, history_months=4)  # ~1,300 rows per checking account
    calls: list[tuple[str, int, int]] = []
    lock = threading.Lock()
    original = AccountsMixin.get_transactions_page

    def recorded(self, *, account_id, page, limit=100, **kwargs):
        with lock:  # pages are fetched on read-ahead threads
            calls.append((account_id, page, limit))
        return original(self, account_id=account_id, page=page, limit=limit, **kwargs)

    monkeypatch.setattr(AccountsMixin, "get_transactions_page", recorded)
    for kind in (ConsentKind.ACCOUNTS, ConsentKind.PRODUCTS):
        consent = consent_services.consent_ensure(user=user, bank_code="vbank", kind=kind)
        if consent.status == ConsentStatus.PENDING:
            consent = consent_services.consent_approve_demo(consent=consent)
        assert consent.status == ConsentStatus.AUTHORIZED
    connection = connection_get_or_create(user=user, bank_code="vbank")

    run = SyncRun.objects.create(connection=connection, user_id=connection.user_id)
    sync_run_execute(sync_run_id=run.pk)
    run.refresh_from_db()

    assert run.status == SyncStatus.SUCCEEDED, run.error
    truth = assert_equals_ground_truth(user=user, bank_code="vbank")  # every row, once
    assert run.transactions_added == sum(len(items) for items in truth["transactions"].values())
    state = clock.state()
    key = data_key("team260-1", state.anchor)
    planned = repairs = grid_cost = backed = 0
    for account in data.bank_layout(key, "vbank").accounts:
        history = data.history(key, account, state.now)
        if len(history) <= 100:
            continue
        salt = f"{django_settings.SANDBOX_SEED}:{account.bank}:{account.account_id}"
        pages = [
            (page, limit) for account_id, page, limit in calls if account_id == account.account_id
        ]
        # The read: page 1, then pages each beginning at or before the end of the one before
        # (no position skipped), up to the last; then the repair pages.
        last = next(i for i, (page, limit) in enumerate(pages) if page * limit >= len(history))
        read, extra = pages[: last + 1], pages[last + 1 :]
        assert read[0] == (1, 100)
        for before, after in pairwise(read):
            assert _positions(*after).start <= _positions(*before).stop < _positions(*after).stop
        backed += sum(1 for page, limit in read if limit != 100)
        # One repair page for each group the read lost a row of, holding it whole; none else.
        lost = _groups_lost(history, salt, read)
        assert len(extra) <= len(lost)
        assert bool(extra) == bool(lost)
        for group in lost:
            assert any(
                _positions(*page).start <= group.start and group.stop <= _positions(*page).stop
                for page in extra
            ), (account.account_id, group)
        planned += len(read)
        repairs += len(extra)
        # What a grid of 100 costs: its pages and a repair for each group it loses a row of.
        grid = [(page, 100) for page in range(1, -(-len(history) // 100) + 1)]
        grid_cost += len(grid) + len(_groups_lost(history, salt, grid))
    assert planned, "the client should have accounts of several pages"
    assert backed, "some page should begin at or before the tied rows the page before ended in"
    assert planned + repairs < grid_cost


def _run(connection, bank: TiedBank) -> SyncRun:
    run = fb.sync_with(connection, bank)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    return run


@pytest.fixture
def connection(db, user, settings):
    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 0
    settings.FIRST_SYNC_RECENT_DAYS = 0
    fb.authorised_consents(user)
    return BankConnection.objects.create(user=user, bank_code="vbank", client_id="team260-1")


def _stored_ids() -> list[str]:
    return sorted(Transaction.objects.values_list("bank_transaction_id", flat=True))


def test_a_page_ending_in_tied_rows_is_followed_by_one_holding_their_group(connection):
    # 98 newer rows, 6 tied at positions 98–103, 96 older: 200 rows, limit 100.
    bank = TiedBank(_listing(98, 6, 96))

    run = _run(connection, bank)

    # Page 1 ends in two tied rows (98, 99): page 2 of 98 holds positions 98–195, the group
    # whole, and page 3 of 98 the rest. No repair, no re-read.
    assert bank.calls == [(1, 100), (2, 98), (3, 98)]
    assert _stored_ids() == sorted(bank.by_id)
    assert run.transactions_added == 200
    assert run.bank_calls == 2 + 3 + 2  # accounts, balances; three pages; catalogue, agreements


def test_no_repair_when_the_rows_a_cut_group_showed_are_all_of_it(connection, settings):
    settings.SYNC_PAGE_LIMIT = 5  # too small a page to begin again before the group (plan)
    items = _listing(3, 4, 3)  # positions 3–6 tied: pages of 5 cut the group at 5
    ids = [item["transactionId"] for item in items]
    # The two pages show the group in other orders, but each of its rows once: nothing lost.
    bank = TiedBank(items, served={(1, 5): [*ids[:3], "t2", "t0"], (2, 5): ["t3", "t1", *ids[7:]]})

    _run(connection, bank)

    assert bank.calls == [(1, 5), (2, 5)]
    assert _stored_ids() == sorted(ids)


def test_a_repair_when_a_cut_group_really_lost_a_row(connection, settings):
    settings.SYNC_PAGE_LIMIT = 5
    items = _listing(3, 4, 3)
    ids = [item["transactionId"] for item in items]
    # t0 on both pages, t3 on neither.
    bank = TiedBank(items, served={(1, 5): [*ids[:3], "t2", "t0"], (2, 5): ["t0", "t1", *ids[7:]]})

    _run(connection, bank)

    assert bank.calls == [(1, 5), (2, 5), (1, 100)]  # page 1 of 100 holds positions 3–6
    assert _stored_ids() == sorted(ids)


def test_a_listing_without_ties_pages_as_a_plain_grid(connection, settings):
    settings.SYNC_PAGE_LIMIT = 5
    items = [fb.tx(f"d{n}", TIE - n * SECOND) for n in range(12)]
    bank = TiedBank(items)

    _run(connection, bank)

    assert bank.calls == [(1, 5), (2, 5), (3, 5)]
    assert _stored_ids() == sorted(bank.by_id)


def test_the_plan_alone():
    """Pages as the plan chooses them, from booking times only (no bank, no database)."""
    from sync.reader import PagePlan, furthest_page

    assert furthest_page(100, 100, 100) == (2, 100)  # on the grid: the plain next page
    assert furthest_page(98, 100, 100) == (2, 98)  # positions 98–195
    assert furthest_page(10, 100, 100) is None  # nothing that begins by 10 reaches past 100
    # A page ending in a tie of two: the next begins at its first row.
    plan = PagePlan(10)
    plan.advance(1, 10, [*range(8), 8, 8], has_next=True, regular=True)
    assert plan.next == (2, 8)  # positions 8–15
    # No tie seen yet: the plain next page, whatever the last row.
    plan = PagePlan(100)
    plan.advance(1, 100, list(range(100)), has_next=True, regular=True)
    assert plan.next == (2, 100)
    # Page 2 shows that last row's instant went on (positions 99 and 100 tied): from then on a
    # page ending in a single row is followed by one beginning at it too.
    plan.advance(2, 100, [99, *range(101, 200)], has_next=True, regular=True)
    assert plan.odds.single_goes_on == 1.0
    assert plan.next == (3, 99)  # positions 198–296
    # Positions uncertain (an item failed to parse): the plain next page of the same size.
    plan.advance(3, 99, [*range(200, 250), *[250] * 49], has_next=True, regular=False)
    assert plan.next == (4, 99)
    # Keys are compared, nothing else (the bench's bare fetch passes the raw strings).
    plan = PagePlan(10)
    plan.advance(1, 10, [*"abcdefgh", "z", "z"], has_next=True, regular=True)
    assert plan.next == (2, 8)
