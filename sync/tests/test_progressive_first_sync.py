"""The progressive first sync (sync/progressive.py) end to end against the sandbox over HTTP.

A sandbox client has 12 months of history: its first sync stores and analyses the newest
FIRST_SYNC_RECENT_DAYS first (the dashboard is ready, history loading, from a day), then reads the
whole history in the same run. Its final rows and figures are those of a one-pass sync of the same
client; a backfill that fails keeps the watermarks and the next sync completes the history.
"""

import threading
import time
from datetime import date, datetime, timedelta

import pytest
from django.utils import timezone

from analytics.dashboard import analytics_breakdown_get, dashboard_get
from analytics.services import analytics_recompute
from audit.models import RawApiLog
from banking.clients.base import BankClient
from banking.models import Account, Transaction
from sandbox import faults
from sandbox.ground_truth import client_bank_truth
from sync import progressive
from sync.models import SyncPhase, SyncRun, SyncStatus, SyncTrigger
from sync.services import sync_run_execute
from sync.tests import one_pass_compare as compare
from sync.tests.ground_truth import assert_equals_ground_truth
from users.onboarding.services import onboarding_start, onboarding_status

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT = "team260-1"  # salaried, a mortgage; at VBank a busy checking account and an empty one
BANK = "vbank"


@pytest.fixture
def recent_days(settings):
    """90 days, and pages of 25 rows: a page of this client's busiest account spans weeks, so
    the newest days are a few pages of a year's listing, as for a busy client's 100-row pages."""
    settings.FIRST_SYNC_RECENT_DAYS = 90
    settings.SYNC_PAGE_LIMIT = 25
    return 90


def _connected(user, bank_code: str = BANK):
    """Both consents authorised (SBank's through the demo approval); the connection."""
    from banking.services.connections import connection_get_or_create
    from consents import services as consent_services
    from consents.models import ConsentKind, ConsentStatus

    for kind in (ConsentKind.ACCOUNTS, ConsentKind.PRODUCTS):
        consent = consent_services.consent_ensure(user=user, bank_code=bank_code, kind=kind)
        if consent.status == ConsentStatus.PENDING:
            consent = consent_services.consent_approve_demo(consent=consent)
        assert consent.status == ConsentStatus.AUTHORIZED
    return connection_get_or_create(user=user, bank_code=bank_code)


def _sync(connection) -> SyncRun:
    run = SyncRun.objects.create(
        connection=connection, user_id=connection.user_id, trigger=SyncTrigger.USER
    )
    sync_run_execute(sync_run_id=run.pk)
    run.refresh_from_db()
    return run


class _AtBackfill:
    """Calls `then()` each time a run enters phase backfill (its newest days are analysed)."""

    def __init__(self, monkeypatch, then):
        original = progressive._phase_set

        def phase_set(run, phase):
            original(run, phase)
            if phase == SyncPhase.BACKFILL:
                then(run)

        monkeypatch.setattr(progressive, "_phase_set", phase_set)


def _booked(item: dict) -> datetime:
    return datetime.fromisoformat(item["bookingDateTime"].replace("Z", "+00:00"))


def _rows(user) -> list[tuple]:
    """Every stored transaction of the user by what the bank and the rules made of it."""
    return list(compare.stored_rows(user))


def _watermarks(user) -> dict:
    return dict(
        Account.objects.filter(user=user).values_list(
            "bank_account_id", "transactions_synced_through"
        )
    )


def test_first_sync_shows_the_newest_days_then_equals_a_one_pass_sync(
    sandbox_banks, make_user, settings, monkeypatch, recent_days
):
    at = timezone.now()
    # The reference: a one-pass first sync of the same client by another user.
    settings.FIRST_SYNC_RECENT_DAYS = 0
    one_pass_user = make_user(client_id=CLIENT)
    one_pass = _sync(_connected(one_pass_user))
    expected_rows, expected_figures = _rows(one_pass_user), compare.figures(one_pass_user, at)
    truth = client_bank_truth(CLIENT, BANK)
    items = [item for listed in truth["transactions"].values() for item in listed]
    # The reference is a real full sync of everything the bank holds (as the bench checks it).
    problems = compare.one_pass_problems(
        [one_pass], stored=len(expected_rows), bank_total=len(items)
    )
    assert problems == []
    expected_watermarks = _watermarks(one_pass_user)

    settings.FIRST_SYNC_RECENT_DAYS = recent_days
    user = make_user(client_id=CLIENT)  # takes the client over
    seen: dict = {}

    def after_recent(run):
        seen["dashboard"] = dashboard_get(user=user)
        seen["analytics"] = analytics_breakdown_get(user=user)
        seen["onboarding"] = onboarding_status(user=user)
        seen["stored"] = set(
            Transaction.objects.filter(user=user).values_list("bank_transaction_id", flat=True)
        )
        seen["watermarks"] = list(
            Account.objects.filter(user=user).values_list("transactions_synced_through", flat=True)
        )
        seen["run"] = SyncRun.objects.values("step", "progress", "phase").get(pk=run.pk)

    _AtBackfill(monkeypatch, after_recent)
    onboarding_start(user=user, bank_codes=[BANK])  # the first sync runs here (eager tasks)
    run = SyncRun.objects.get(user=user)

    # After the newest days: the dashboard is ready, says the history loads and from when.
    dashboard = seen["dashboard"]
    assert dashboard["state"] == "ready"
    history = dashboard["history"]
    assert (history["state"], history["loading_banks"]) == ("loading", [BANK])
    complete_from = date.fromisoformat(history["complete_from"])
    today = timezone.localdate()
    assert today - timedelta(days=recent_days + 60) <= complete_from
    assert complete_from <= today - timedelta(days=recent_days - 1)
    assert seen["analytics"]["history"] == history
    # Stored then: every row from complete_from on, and not the older ones.
    assert any(_booked(item).date() < complete_from - timedelta(days=7) for item in items)
    recent_ids = {
        item["transactionId"]
        for item in items
        if timezone.localtime(_booked(item)).date() >= complete_from
    }
    assert recent_ids <= seen["stored"]
    assert len(seen["stored"]) < len(items)
    assert seen["watermarks"] and all(w is None for w in seen["watermarks"])
    # Figures resting on long history say so; the onboarding shows the phase.
    for figure in (dashboard["sts"], dashboard["health"]):
        assert (figure["is_estimate"], figure["basis"]) == (True, "history_loading")
        assert figure["history_from"] == history["complete_from"]
    spend = next(i for i in dashboard["health"]["indicators"] if i["code"] == "spend_vs_income")
    assert spend["is_estimate"] is True
    bank = seen["onboarding"]["banks"][0]
    assert bank["history"] == {"phase": "backfill", "complete_from": complete_from}
    assert bank["sync"]["phase"] == "backfill"
    assert seen["onboarding"]["can_proceed"] is True
    assert seen["run"]["phase"] == SyncPhase.BACKFILL
    assert seen["run"]["progress"] < 40

    # After the backfill, in the same run: the whole history, as a one-pass sync stores it.
    assert (run.status, run.phase, run.progress) == (SyncStatus.SUCCEEDED, "backfill", 100), run
    assert_equals_ground_truth(user=user, bank_code=BANK)
    assert run.transactions_added == len(items) == one_pass.transactions_added
    # The backfill went on where the newest days stopped: each row read once, no page asked for
    # again but the one per account that checks the listing did not move at the boundary.
    assert run.transactions_unchanged == 0
    accounts = Account.objects.filter(user=user).count()
    assert 0 < _page_calls(user) <= _page_calls(one_pass_user) + accounts
    assert _rows(user) == expected_rows
    assert _watermarks(user) == expected_watermarks  # its empty account has none either
    final = dashboard_get(user=user)
    assert final["history"]["state"] == "complete"
    assert "is_estimate" not in final["sts"]
    assert onboarding_status(user=user)["banks"][0]["history"]["phase"] == "done"
    assert compare.differences(compare.figures(user, at), expected_figures) == []


def test_a_failed_backfill_keeps_the_watermarks_and_the_next_sync_completes_it(
    sandbox_banks, make_user, monkeypatch, recent_days
):
    user = make_user(client_id=CLIENT)
    connection = _connected(user)
    pages_in_backfill = {"count": 0}
    lock = threading.Lock()
    original = BankClient.get_transactions_page

    def page(self, **kwargs):
        with lock:
            if backfilling.is_set():
                pages_in_backfill["count"] += 1
                if pages_in_backfill["count"] == 4:  # a few pages in: the bank starts failing
                    faults.set_faults(BANK, error_rate=1.0, error_statuses="503")
        return original(self, **kwargs)

    backfilling = threading.Event()
    monkeypatch.setattr(BankClient, "get_transactions_page", page)
    _AtBackfill(monkeypatch, lambda run: backfilling.set())

    failed = _sync(connection)

    assert failed.status == SyncStatus.FAILED, failed.error
    assert failed.phase == SyncPhase.BACKFILL
    assert pages_in_backfill["count"] >= 4
    accounts = Account.objects.filter(user=user)
    assert all(a.transactions_synced_through is None for a in accounts)
    truth = client_bank_truth(CLIENT, BANK)
    served = {item["transactionId"] for listed in truth["transactions"].values() for item in listed}
    stored = list(
        Transaction.objects.filter(user=user).values_list("bank_transaction_id", flat=True)
    )
    assert set(stored) < served
    assert len(stored) == len(set(stored))
    analytics_recompute(user=user)  # any snapshot meanwhile says so, not only phase 1's
    history = dashboard_get(user=user)["history"]
    assert (history["state"], history["loading_banks"]) == ("loading", [BANK])

    faults.clear_faults(BANK)
    backfilling.clear()
    monkeypatch.setattr(BankClient, "get_transactions_page", original)
    early = []
    monkeypatch.setattr(progressive, "_recent_figures", early.append)

    again = _sync(connection)

    assert again.status == SyncStatus.SUCCEEDED, again.error
    # Rows were stored: not a first sync, a plain full read that completes the history.
    assert again.phase == SyncPhase.BACKFILL and early == []
    assert_equals_ground_truth(user=user, bank_code=BANK)
    assert again.transactions_added == len(served) - len(stored)
    assert Transaction.objects.filter(user=user).count() == len(served)
    assert all(
        a.transactions_synced_through is not None
        for a in accounts.all()
        if Transaction.objects.filter(account=a).exists()
    )
    analytics_recompute(user=user)
    assert dashboard_get(user=user)["history"]["state"] == "complete"


def test_the_second_sync_is_not_progressive(sandbox_banks, make_user, monkeypatch, recent_days):
    user = make_user(client_id=CLIENT)
    connection = _connected(user)
    first = _sync(connection)
    assert (first.status, first.phase) == (SyncStatus.SUCCEEDED, SyncPhase.BACKFILL)
    early = []
    monkeypatch.setattr(progressive, "_recent_figures", early.append)

    second = _sync(connection)

    assert (second.status, second.phase) == (SyncStatus.SUCCEEDED, SyncPhase.ONE_PASS)
    assert early == []
    assert (second.transactions_added, second.transactions_updated) == (0, 0)
    assert second.bank_calls == 2 + 2 * second.accounts_count  # as any incremental sync


def test_the_backfill_fetches_ahead_while_the_figures_are_computed_and_writes_after(
    sandbox_banks, make_user, monkeypatch, recent_days
):
    """On PostgreSQL (reads on worker threads beside the figures): the backfill's pages are
    fetched while the newest days' figures are computed, so the rate limit is not left idle;
    none of its rows is stored until the figures and the phase are committed."""
    from django.db import connection as db_connection

    if db_connection.vendor != "postgresql":
        pytest.skip("the reads run beside the figures only on PostgreSQL (one writer on SQLite)")
    user = make_user(client_id=CLIENT)
    connection = _connected(user)
    lock = threading.Lock()
    pages = {"count": 0}
    original_page = BankClient.get_transactions_page

    def page(self, **kwargs):
        with lock:
            pages["count"] += 1
        return original_page(self, **kwargs)

    monkeypatch.setattr(BankClient, "get_transactions_page", page)
    original_recompute = progressive.analytics_recompute
    seen: dict = {}

    def recompute(*, user):
        with lock:
            at_start = pages["count"]
        stored = Transaction.objects.filter(user=user).count()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the backfill's helpers fetch meanwhile
            with lock:
                if pages["count"] >= at_start + 3:
                    break
            time.sleep(0.01)
        with lock:
            seen["fetched_meanwhile"] = pages["count"] - at_start
        seen["stored_before"], seen["stored_after"] = (
            stored,
            Transaction.objects.filter(user=user).count(),
        )
        return original_recompute(user=user)

    monkeypatch.setattr(progressive, "analytics_recompute", recompute)
    at_phase: dict = {}
    _AtBackfill(
        monkeypatch,
        lambda run: at_phase.update(stored=Transaction.objects.filter(user=user).count()),
    )

    run = _sync(connection)

    assert (run.status, run.phase) == (SyncStatus.SUCCEEDED, SyncPhase.BACKFILL), run.error
    # Pages came in while the figures were computed…
    assert seen["fetched_meanwhile"] >= 3
    # …and no row was written then, nor before the phase said backfill.
    assert seen["stored_after"] == seen["stored_before"] == at_phase["stored"]
    assert at_phase["stored"] < run.transactions_added
    assert_equals_ground_truth(user=user, bank_code=BANK)


def _page_calls(user) -> int:
    """Transaction pages the user's syncs asked for (the raw request logs)."""
    return RawApiLog.objects.filter(
        user=user, direction="request", endpoint__contains="/transactions"
    ).count()


def test_a_history_within_the_newest_days_is_read_once(
    sandbox_banks, make_user, settings, monkeypatch
):
    """Every listing ends within FIRST_SYNC_RECENT_DAYS: nothing to backfill, no early figures,
    the same calls as a one-pass sync."""
    settings.FIRST_SYNC_RECENT_DAYS = 0
    one_pass_user = make_user(client_id=CLIENT)
    one_pass = _sync(_connected(one_pass_user))
    settings.FIRST_SYNC_RECENT_DAYS = 3650
    user = make_user(client_id=CLIENT)
    early = []
    monkeypatch.setattr(progressive, "_recent_figures", early.append)

    run = _sync(_connected(user))

    assert (run.status, run.phase) == (SyncStatus.SUCCEEDED, SyncPhase.RECENT)
    assert early == []
    assert _page_calls(user) == _page_calls(one_pass_user) > 0
    assert (run.transactions_added, run.transactions_unchanged) == (one_pass.transactions_added, 0)
    assert_equals_ground_truth(user=user, bank_code=BANK)


def _finished_full_run(bank_code: str, **fields) -> SyncRun:
    """A succeeded full run of `bank_code` (unsaved), with the figures the comparison reads."""
    from banking.models import BankConnection
    from sync.models import SyncKind

    return SyncRun(
        pk=1,
        connection=BankConnection(bank_code=bank_code),
        kind=SyncKind.FULL,
        status=SyncStatus.SUCCEEDED,
        **fields,
    )


def test_a_reference_that_is_not_a_full_sync_is_named():
    """What bench/first_figures.py reported as a 524-row reference with no bank call: every
    reason the comparison refuses it is named."""
    run = _finished_full_run(
        BANK,
        phase=SyncPhase.BACKFILL,
        bank_calls=0,
        accounts_count=2,
        transactions_added=524,
        transactions_unchanged=3,
    )

    problems = compare.one_pass_problems([run], stored=524, bank_total=86403)

    assert problems == [
        "run 1 (vbank) is kind full, phase backfill, not a one-pass read",
        "run 1 (vbank) made 0 bank call(s) for 2 account(s)",
        "524 rows stored, the banks count 86403 (totalRecords)",
    ]
    assert compare.one_pass_problems([], stored=0) == ["no sync run"]
    # Rows stored before the reference: stored, not added by it.
    assert compare.one_pass_problems([run], stored=86403)[-1] == (
        "the runs added 524 rows but 86403 are stored"
    )


def test_a_row_a_one_pass_read_met_twice_does_not_disqualify_it():
    """A tie group's row the bank shows on two pages is met again in a later write batch and
    counted unchanged (bench/first_figures.py's full-size reference at ABank had one)."""
    run = _finished_full_run(
        "abank",
        phase=SyncPhase.ONE_PASS,
        bank_calls=1000,
        accounts_count=5,
        transactions_added=81806,
        transactions_unchanged=1,
    )

    assert compare.one_pass_problems([run], stored=81806, bank_total=81806) == []
