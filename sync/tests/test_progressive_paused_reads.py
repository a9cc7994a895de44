"""The progressive first sync's backfill resumes each account's read where its first phase
stopped (sync.reader.PausedRead), against a fake bank over `responses`: the newest days' pages are
not asked for again; a tie group cut at the pause is repaired as in a one-pass read; a listing
that moved between the phases (rows booked or gone at the bank) is read through once more, so no
row is lost and none stored twice."""

from datetime import timedelta

import pytest
from django.utils import timezone

from banking.models import Account, BankConnection, Transaction
from sync import progressive
from sync.models import SyncPhase, SyncStatus
from sync.tests import fakebank as fb
from sync.tests.test_tied_paging import TiedBank

DAY = timedelta(days=1)
RECENT_DAYS = 10
LIMIT = 5


@pytest.fixture
def connection(db, user, settings):
    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 0
    settings.FIRST_SYNC_RECENT_DAYS = RECENT_DAYS
    settings.SYNC_PAGE_LIMIT = LIMIT
    fb.authorised_consents(user)
    return BankConnection.objects.create(user=user, bank_code="vbank", client_id="team260-1")


def _listing(count: int = 20, *, tied: range = range(0)) -> list[dict]:
    """`count` rows a day apart, newest first, the first half of a day ago; those at the
    positions in `tied` share one instant (t0, t1, …), the others are r<position>."""
    now = timezone.now()
    rows = []
    for position in range(count):
        if position in tied:
            instant = now - (tied.start + 0.5) * DAY
            rows.append(fb.tx(f"t{position - tied.start}", instant))
        else:
            rows.append(fb.tx(f"r{position}", now - (position + 0.5) * DAY))
    return rows


def _between_phases(monkeypatch, then) -> None:
    """Run `then()` once the newest days are stored, before the backfill reads on."""
    original = progressive._phase_set

    def phase_set(run, phase):
        original(run, phase)
        if phase == SyncPhase.BACKFILL:
            then()

    monkeypatch.setattr(progressive, "_phase_set", phase_set)


def _stored() -> list[str]:
    return sorted(Transaction.objects.values_list("bank_transaction_id", flat=True))


def _newest(bank: TiedBank):
    from datetime import datetime

    return max(
        datetime.fromisoformat(item["bookingDateTime"].replace("Z", "+00:00"))
        for item in bank.items
    )


def _positions(call: tuple[int, int]) -> range:
    page, size = call
    return range((page - 1) * size, page * size)


def test_the_backfill_goes_on_from_where_the_newest_days_stopped(connection):
    bank = TiedBank(_listing(20))

    run = fb.sync_with(connection, bank)

    assert (run.status, run.phase) == (SyncStatus.SUCCEEDED, SyncPhase.BACKFILL), run.error
    # The newest days: pages 1–3 (page 3 reaches past RECENT_DAYS), each asked for once.
    assert bank.calls[:3] == [(1, LIMIT), (2, LIMIT), (3, LIMIT)]
    backfill = bank.calls[3:]
    # The backfill's first page shares a position with page 3 (the boundary check), no more:
    # nothing the newest days read is asked for again.
    assert min(_positions(backfill[0])) == 3 * LIMIT - 1
    assert all(min(_positions(call)) >= 3 * LIMIT - 1 for call in backfill)
    assert len(bank.calls) <= 4 + 1  # a one-pass read's four pages, and that one
    assert _stored() == sorted(bank.by_id)
    assert (run.transactions_added, run.transactions_unchanged) == (20, 0)
    assert run.warnings == []
    account = Account.objects.get(bank_account_id=fb.ACCOUNT_ID)
    assert account.transactions_synced_through == _newest(bank)


def test_a_tie_group_cut_at_the_pause_is_repaired_as_in_a_one_pass_read(connection):
    # The group t0…t3 holds positions 13–16: page 3 (10–14) ends in t0 t1, so the backfill goes
    # on with a page that begins inside the group (14–15), and the bank shows no t3 on it nor
    # on the next one (16–19): the group straddled the pause and lost a row.
    bank = TiedBank(
        _listing(20, tied=range(13, 17)),
        served={
            (3, 5): ["r10", "r11", "r12", "t0", "t1"],
            (8, 2): ["t1", "t0"],
            (5, 4): ["t2", "r17", "r18", "r19"],
        },
    )

    run = fb.sync_with(connection, bank)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert bank.calls[:5] == [(1, 5), (2, 5), (3, 5), (8, 2), (5, 4)]
    # Then one page holding the whole group, as the repair of a one-pass read asks for.
    [repair] = bank.calls[5:]
    assert set(range(13, 17)) <= set(_positions(repair))
    assert _stored() == sorted(bank.by_id)  # t3 found, each row once
    assert run.warnings == []
    account = Account.objects.get(bank_account_id=fb.ACCOUNT_ID)
    assert account.transactions_synced_through == _newest(bank)


def test_a_tie_group_cut_within_the_newest_days_is_whole_before_the_first_figures(
    connection, monkeypatch
):
    # The group t0…t3 holds positions 3–6, days inside the newest ten: page 1 ends in t0 t1,
    # page 2 shows t1 t2 (the bank's order within a tie), so t3 is on neither. The first
    # figures and "complete from" rest on what is stored at the pause: the group must be
    # whole by then, not only once the backfill ends.
    bank = TiedBank(
        _listing(20, tied=range(3, 7)),
        served={
            (1, 5): ["r0", "r1", "r2", "t0", "t1"],
            (2, 5): ["t1", "t2", "r7", "r8", "r9"],
        },
    )
    at_pause: dict = {}
    _between_phases(monkeypatch, lambda: at_pause.update(stored=set(_stored())))

    run = fb.sync_with(connection, bank)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    newest_days = [f"r{n}" for n in (0, 1, 2, 7, 8, 9)] + [f"t{n}" for n in range(4)]
    assert set(newest_days) <= at_pause["stored"]
    assert _stored() == sorted(bank.by_id)  # each row once
    assert run.warnings == []
    # The repair page (one of 100 rows, covering the group) was asked for once, before the
    # pause; the final repair finds it read.
    repairs = [call for call in bank.calls if call[1] == 100]
    assert len(repairs) == 1
    assert bank.calls.index(repairs[0]) < bank.calls.index((3, LIMIT)) + 2


def test_rows_booked_between_the_phases_are_found_and_nothing_is_stored_twice(
    connection, monkeypatch
):
    bank = TiedBank(_listing(20))
    now = timezone.now()

    def booked_meanwhile():
        new = [fb.tx("new-1", now), fb.tx("new-2", now - timedelta(hours=1))]
        bank.items[:0] = new
        bank.by_id.update({item["transactionId"]: item for item in new})

    _between_phases(monkeypatch, booked_meanwhile)
    run = fb.sync_with(connection, bank)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert _stored() == sorted(bank.by_id)
    assert len(_stored()) == len(set(_stored())) == 22
    assert run.warnings == []
    account = Account.objects.get(bank_account_id=fb.ACCOUNT_ID)
    assert account.transactions_synced_through == _newest(bank)


def test_rows_gone_between_the_phases_lose_no_row_that_moved_past_the_boundary(
    connection, monkeypatch
):
    """Five rows the first phase read leave the listing (pending rows the bank dropped): every
    later row moves up five positions, so r15 and r16 are now where pages 2–3 ended, before the
    boundary. Going on from the boundary alone would never show them (and the bank's count, 15,
    is below the 20 rows read, so the count check could not tell); the boundary check sees the
    listing moved and reads it through once more."""
    bank = TiedBank(_listing(20))
    gone = {f"r{position}" for position in range(1, 6)}

    def gone_meanwhile():
        bank.items[:] = [item for item in bank.items if item["transactionId"] not in gone]

    _between_phases(monkeypatch, gone_meanwhile)
    run = fb.sync_with(connection, bank)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    listed = set(bank.by_id) - gone
    assert {"r15", "r16"} <= listed <= set(_stored())
    assert len(_stored()) == len(set(_stored())) == 20  # the gone rows stay stored (read)
    assert run.warnings == []
