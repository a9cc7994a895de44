"""Chaos sync: many rounds of syncs against sandbox banks with faults on, then a clean round and a
comparison of everything stored with the sandbox's ground truth.

Each round switches faults on at random per bank (5xx, 429 with Retry-After, hangs past the
client timeout, early token expiry), one round revokes one client's consents at one bank (a later
round connects it again through the normal service path), one round serves malformed bodies at
one bank, and the sandbox clock moves forward between rounds (so pending transactions post under
new ids). On top of those (issue 20; `--classic` leaves them out) the banks' transaction pages
misbehave (`sandbox.faults.transaction_page`): rows with a malformed amount (in the first round,
at one bank, over the whole history, and later again; well-formed in later rounds), a page of
200,000 items, a listing stuck repeating a page with `links.next` not advancing, pages served
rows short, listings ending early. The live-style data has rows tied on booking time, many
across page boundaries (the script prints how many). Then faults go off, the clock is frozen, one
clean round runs, and the script prints transactions lost / duplicated / wrong (and how many of
the rows once served malformed were lost), connections in a wrong state and sync runs whose
recorded outcome does not match what happened. All of them must be 0. The RNG is seeded; the seed
is printed, and the same seed replays the same plan.

    .venv/bin/python bench/chaos_sync.py                  # PostgreSQL db fintrack_chaos
    .venv/bin/python bench/chaos_sync.py --embedded       # SQLite file var/chaos.sqlite3
    .venv/bin/python bench/chaos_sync.py --seed 7 --rounds 30 --clients 4
    .venv/bin/python bench/chaos_sync.py --processes      # real workers, process faults:
                                                          # bench/chaos_processes.py

Over real HTTP: the sandbox runs as `manage.py run_sandbox` in a subprocess sharing the database;
syncs run in this process (eager Celery). `--processes` runs them on two real Celery worker
processes instead and adds worker kills, Redis restarts and database backend terminations
(bench/chaos_processes.py). The engine (`chaos_prepare`, `chaos_run`) is also what
sync/tests/test_chaos.py runs, shorter and with the classic faults only.
"""

import argparse
import json
import os
import random
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parent.parent
BANK_CODES = ("vbank", "abank", "sbank")
# The fault mix, per request while a bank's faults are on.
ERROR_RATE = 0.10
RATE_LIMIT_RATE = 0.05
HANG_RATE = 0.02
MALFORMED_RATE = 0.5  # only at one bank in one round: a few truncated bodies
FAULTY_BANK_SHARE = 0.75  # the chance a bank has faults on in a round
TOKEN_EXPIRY_SHARE = 0.3  # the chance a faulty bank also kills every token issued so far

# Transaction-page faults (issue 20), one bank-round each (a second one now and then).
PAGE_FAULTS = ("malformed_row", "oversized_page", "repeat_page", "short_page", "early_end")
OVERSIZED_ITEMS = 200_000  # items of an oversized page (the figure)
PAGE_FAULT_SWITCHES = {
    "malformed_row": {"malformed_row_rate": 0.05},  # the same rows all round, well-formed later
    "oversized_page": {"oversized_page_rate": 0.5},
    "repeat_page": {"repeat_page_rate": 0.5},  # of the listings (account, page size)
    "short_page": {"short_page_rate": 0.5},
    "early_end": {"early_end_rate": 0.5},
}
# The sandbox clients the bench uses first: those with the most rows tied on one booking time
# across page boundaries of 100 (3, 10, 7, 9), then the others.
TIED_CLIENTS_FIRST = (3, 10, 7, 9, 1, 2, 4, 5, 6, 8)
SECOND_PAGE_FAULT_SHARE = 0.3
# Repeated pages one run may read before the read counts as unbounded (a bounded reader stops
# at the first repeat or two).
UNBOUNDED_REPEATS = 20
MEMORY_TARGET_MB = 300


@dataclass
class ChaosReport:
    """The plan that ran and every figure the script prints."""

    seed: int
    rounds: int = 0
    clients: int = 0
    syncs_requested: int = 0
    syncs_refused: Counter = field(default_factory=Counter)
    runs_by_outcome: Counter = field(default_factory=Counter)
    switched_on: Counter = field(default_factory=Counter)  # bank-rounds with each fault on
    faults_seen: Counter = field(default_factory=Counter)  # exchanges FinTrack recorded
    revoked: list[str] = field(default_factory=list)
    reconnected: list[str] = field(default_factory=list)
    transactions_expected: int = 0
    transactions_stored: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    wrong_accounts: list[str] = field(default_factory=list)
    wrong_connections: list[str] = field(default_factory=list)
    bad_runs: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # Issue 20: page faults, tied booking times, and (process mode) the process faults.
    mode: str = "in-process (eager Celery)"
    page_faults: bool = False
    page_faults_met: Counter = field(default_factory=Counter)  # pages served with each fault
    malformed_switches: list[tuple] = field(default_factory=list)  # (bank, seed, rate, clock)
    malformed_served: int = 0  # rows served malformed in some round (and well-formed later)
    malformed_lost: list[str] = field(default_factory=list)
    ties: Counter = field(default_factory=Counter)
    unbounded_paging: list[str] = field(default_factory=list)
    race_failures: list[str] = field(default_factory=list)
    process_faults: Counter = field(default_factory=Counter)
    stuck: list[str] = field(default_factory=list)
    workers_died: list[str] = field(default_factory=list)
    memory_guard_kills: list[str] = field(default_factory=list)
    worker_peak_mb: float | None = None  # the largest worker process (VmHWM), process mode
    worker_tree_peak_mb: float | None = None  # a worker with its pool children, summed
    sync_process_peak_mb: float | None = None  # this process, in-process mode (info only)
    memory_target_mb: float = MEMORY_TARGET_MB
    settle_seconds: float | None = None
    recovery_seconds: dict = field(default_factory=dict)  # process fault → slowest round's end
    settle_deadline: float | None = None
    reaper: str = ""
    notes: list[str] = field(default_factory=list)

    def _race_breakdown(self) -> str:
        if not self.race_failures:
            return ""
        integrity = sum("IntegrityError" in item for item in self.race_failures)
        on_db_fault = sum(
            "IntegrityError" not in item and "db_terminate" in item for item in self.race_failures
        )
        return (
            f" ({integrity} IntegrityError, {on_db_fault} internal_error in a round whose DB "
            f"backends were terminated, {len(self.race_failures) - integrity - on_db_fault} other)"
        )

    def unmet_page_faults(self) -> list[str]:
        """Page faults switched on in some round that no transaction page was served with."""
        return [
            kind
            for kind in PAGE_FAULTS
            if self.switched_on[kind] and not self.page_faults_met[kind]
        ]

    def memory_missed(self) -> bool:
        return self.worker_peak_mb is not None and self.worker_peak_mb > self.memory_target_mb

    def problems(self) -> int:
        return int(self.memory_missed()) + sum(
            len(items)
            for items in (
                self.lost,
                self.duplicated,
                self.wrong,
                self.wrong_accounts,
                self.wrong_connections,
                self.bad_runs,
                self.unbounded_paging,
                self.race_failures,
                self.stuck,
                self.workers_died,
            )
        )

    def lines(self) -> list[str]:
        def few(items: list[str]) -> str:
            return f"  e.g. {items[:3]}" if items else ""

        def mark(ok: bool) -> str:
            return "ok" if ok else "MISSED"

        lines = [
            f"chaos sync ({self.mode}): seed {self.seed}, {self.rounds} rounds + 1 clean round, "
            f"{self.clients} clients x {len(BANK_CODES)} banks, {self.seconds:.0f} s",
            f"  syncs requested {self.syncs_requested}, refused {dict(self.syncs_refused)}, "
            f"runs {dict(self.runs_by_outcome)}",
            f"  faults switched on (bank-rounds): {dict(self.switched_on)}",
            f"  faults FinTrack met (bank exchanges): {dict(self.faults_seen)}",
        ]
        if self.page_faults:
            lines.append(f"  transaction pages served with a fault: {dict(self.page_faults_met)}")
            if self.unmet_page_faults():
                lines.append(f"    switched on but met by no read: {self.unmet_page_faults()}")
        if self.process_faults:
            lines.append(f"  process faults injected: {dict(self.process_faults)}")
        lines += [
            f"  consents revoked: {self.revoked}; connected again: {self.reconnected}",
            f"  tied booking times: {self.ties['groups']} groups of {self.ties['rows']} rows, "
            f"{self.ties['straddling']} straddling a page boundary ({self.ties['limit']} a "
            f"page); tied rows lost {self.ties['lost']}",
            f"  transactions expected {self.transactions_expected}, "
            f"stored {self.transactions_stored}",
            f"  transactions lost: {len(self.lost)}{few(self.lost)}",
        ]
        if self.page_faults:
            lines.append(
                f"    of the {self.malformed_served} rows served malformed in a round and "
                f"well-formed later: lost {len(self.malformed_lost)}{few(self.malformed_lost)}"
            )
        lines += [
            f"  transactions duplicated: {len(self.duplicated)}{few(self.duplicated)}",
            f"  transactions wrong: {len(self.wrong)}{few(self.wrong)}",
            f"  accounts/balances wrong: {len(self.wrong_accounts)}{few(self.wrong_accounts)}",
            f"  connections in a wrong state: {len(self.wrong_connections)}"
            f"{few(self.wrong_connections)}",
            f"  sync runs whose outcome does not match what happened: {len(self.bad_runs)}"
            f"{few(self.bad_runs)}",
        ]
        if self.page_faults:
            lines.append(
                f"  runs that read a repeating page more than {UNBOUNDED_REPEATS} times: "
                f"{len(self.unbounded_paging)}{few(self.unbounded_paging)}"
            )
        if self.sync_process_peak_mb is not None:
            lines.append(f"  peak RSS of this process (it ran the syncs): "
                         f"{self.sync_process_peak_mb:.0f} MB (info)")  # fmt: skip
        lines += [f"  note: {note}" for note in self.notes]
        lines += [
            "  targets (issue 20):",
            f"    lost 0 (incl. rows malformed once, well-formed later): {len(self.lost)} "
            f"{mark(not self.lost)}",
            f"    duplicated 0: {len(self.duplicated)} {mark(not self.duplicated)}",
            f"    race failures 0 (runs failed internal_error / IntegrityError): "
            f"{len(self.race_failures)} {mark(not self.race_failures)}"
            f"{self._race_breakdown()}{few(self.race_failures)}",
        ]
        if self.settle_deadline is not None:
            lines += [
                f"    runs stuck past one reaper period: {len(self.stuck)} {mark(not self.stuck)}"
                f"{few(self.stuck)}",
                f"      (after faults stopped every run was finished in "
                f"{self.settle_seconds:.0f} s; allowed {self.settle_deadline:.0f} s)"
                if self.settle_seconds is not None
                else f"      (after faults stopped, runs were still active past "
                f"{self.settle_deadline:.0f} s)",
                f"      (slowest round, from its process fault to its last run finished: "
                f"{self.recovery_seconds})",
                f"    workers that died on their own: {len(self.workers_died)} "
                f"{mark(not self.workers_died)}{few(self.workers_died)}",
                f"    worker peak memory <= {self.memory_target_mb:.0f} MB: "
                f"{self.worker_peak_mb or 0:.0f} MB (a worker with its pool child: "
                f"{self.worker_tree_peak_mb or 0:.0f} MB) {mark(not self.memory_missed())}"
                + (
                    f"; killed by the memory guard: {self.memory_guard_kills}"
                    * bool(self.memory_guard_kills)
                ),
                f"    reaper: {self.reaper}",
            ]
        lines += [
            f"    seconds: {self.seconds:.0f}",
            "  RESULT: " + ("OK, all zero" if self.problems() == 0 else "FAILED"),
        ]
        return lines

    def as_dict(self) -> dict:
        return {
            "seed": self.seed,
            "rounds": self.rounds,
            "clients": self.clients,
            "syncs_requested": self.syncs_requested,
            "syncs_refused": dict(self.syncs_refused),
            "runs_by_outcome": dict(self.runs_by_outcome),
            "faults_switched_on": dict(self.switched_on),
            "faults_seen": dict(self.faults_seen),
            "revoked": self.revoked,
            "reconnected": self.reconnected,
            "transactions_expected": self.transactions_expected,
            "transactions_stored": self.transactions_stored,
            "lost": len(self.lost),
            "duplicated": len(self.duplicated),
            "wrong": len(self.wrong),
            "wrong_accounts": len(self.wrong_accounts),
            "wrong_connections": len(self.wrong_connections),
            "bad_runs": len(self.bad_runs),
            "seconds": round(self.seconds, 1),
            "mode": self.mode,
            "page_faults_met": dict(self.page_faults_met),
            "malformed_served": self.malformed_served,
            "malformed_lost": len(self.malformed_lost),
            "ties": dict(self.ties),
            "unbounded_paging": len(self.unbounded_paging),
            "race_failures": len(self.race_failures),
            "process_faults": dict(self.process_faults),
            "stuck": len(self.stuck),
            "workers_died": len(self.workers_died),
            "memory_guard_kills": len(self.memory_guard_kills),
            "worker_peak_mb": self.worker_peak_mb,
            "worker_tree_peak_mb": self.worker_tree_peak_mb,
            "sync_process_peak_mb": self.sync_process_peak_mb,
            "settle_seconds": self.settle_seconds,
            "settle_deadline": self.settle_deadline,
            "recovery_seconds": self.recovery_seconds,
            "unmet_page_faults": self.unmet_page_faults(),
            "reaper": self.reaper,
            "examples": {
                "lost": self.lost[:10],
                "duplicated": self.duplicated[:10],
                "bad_runs": self.bad_runs[:10],
                "race_failures": self.race_failures[:10],
                "stuck": self.stuck[:10],
                "workers_died": self.workers_died[:10],
                "unbounded_paging": self.unbounded_paging[:10],
            },
            "notes": self.notes,
            "problems": self.problems(),
        }


# --- Setting up ---------------------------------------------------------------------------------


def _client_id(user, bank_code: str) -> str:
    """Who `user` is at `bank_code`: their connection's client id."""
    from banking.models import BankConnection

    return BankConnection.objects.get(user=user, bank_code=bank_code).client_id


def chaos_prepare(
    *,
    clients: int,
    per_year: int | None = None,
    months: int | None = None,
    client_numbers: tuple[int, ...] | None = None,
):
    """Register `clients` users and connect each to every bank (consents approved): user N is
    the sandbox's client <team>-N, or <team>-<client_numbers[N]> with `client_numbers`."""
    from django.conf import settings

    from banking.services.connections import connection_client_id_set, connection_get_or_create
    from consents import services as consent_services
    from consents.models import ConsentKind, ConsentStatus
    from sandbox.volume import set_client_volume
    from users.services import user_create

    users = []
    for number in range(1, clients + 1):
        user = user_create(email=f"chaos{number}@example.com", password="Chaos-pass-2026!")
        client_number = client_numbers[number - 1] if client_numbers is not None else number
        client_id = f"{settings.BANK_TEAM_ID}-{client_number}"
        if per_year is not None:
            set_client_volume(client_id, per_year, history_months=months)
        for bank_code in BANK_CODES:
            # Who the user is at the bank: a demo client (its SBank consent is self-signed).
            connection = connection_get_or_create(user=user, bank_code=bank_code)
            connection_client_id_set(connection=connection, client_id=client_id, is_demo=True)
            for kind in (ConsentKind.ACCOUNTS, ConsentKind.PRODUCTS):
                consent = consent_services.consent_ensure(user=user, bank_code=bank_code, kind=kind)
                if consent.status == ConsentStatus.PENDING:
                    consent = consent_services.consent_approve_demo(consent=consent)
                if consent.status != ConsentStatus.AUTHORIZED:
                    raise RuntimeError(f"{user} {bank_code} {kind}: consent {consent.status}")
            connection_get_or_create(user=user, bank_code=bank_code)
        users.append(user)
    return users


# --- The rounds ---------------------------------------------------------------------------------


@dataclass
class _Plan:
    """Which client/bank is revoked when and connected again, which bank-round is malformed."""

    revoke_round: int
    reconnect_round: int
    revoke_target: tuple[int, str]
    malformed_round: int
    malformed_bank: str


def _plan(rng: random.Random, *, rounds: int, clients: int) -> _Plan:
    revoke_round = max(1, rounds // 3)
    reconnect_round = min(rounds - 1, revoke_round + 2)
    revoke_target = (rng.randrange(clients), rng.choice(BANK_CODES))
    malformed_round, malformed_bank = rng.randrange(rounds), rng.choice(BANK_CODES)
    if malformed_bank == revoke_target[1] and revoke_round <= malformed_round < reconnect_round:
        # That bank's syncs are refused while its consent is revoked: the fault would go unmet.
        others = [code for code in BANK_CODES if code != malformed_bank]
        malformed_bank = others[malformed_round % len(others)]
    return _Plan(
        revoke_round=revoke_round,
        reconnect_round=reconnect_round,
        revoke_target=revoke_target,
        malformed_round=malformed_round,
        malformed_bank=malformed_bank,
    )


def _page_plan(seed: int, rounds: int) -> dict[tuple[int, str], list[str]]:
    """(round, bank) → the page faults switched on there: one at each bank in the first round (a
    full read of the whole history), then each page fault in turn, one bank a round (drawn from
    an RNG of their own: the classic plan stays what it was for a seed)."""
    rng = random.Random(f"pages:{seed}")
    banks = list(BANK_CODES)
    rng.shuffle(banks)
    # The first round reads every account whole: the faults that only a read past page 1 meets
    # (a stuck listing, an early end) and rows malformed deep in the history go there.
    plan: dict[tuple[int, str], list[str]] = {
        (0, banks[0]): ["malformed_row"],
        (0, banks[1]): ["repeat_page", "malformed_row"],
        (0, banks[2]): ["early_end", "oversized_page"],
    }
    cycle = PAGE_FAULTS[1:] + PAGE_FAULTS[:1]
    for round_number in range(1, rounds):
        plan.setdefault((round_number, rng.choice(BANK_CODES)), []).append(
            cycle[(round_number - 1) % len(cycle)]
        )
        if rng.random() < SECOND_PAGE_FAULT_SHARE:
            kinds = plan.setdefault((round_number, rng.choice(BANK_CODES)), [])
            extra = rng.choice(PAGE_FAULTS)
            if extra not in kinds:
                kinds.append(extra)
    return plan


def _page_options(kinds: list[str], *, oversized_items: int) -> dict:
    """The sandbox switches of these page faults (every page switch: the others off)."""
    from sandbox import faults

    options = {name: 0.0 for name in faults.PAGE_FIELDS}
    options["oversized_page_items"] = oversized_items
    for kind in kinds:
        options.update(PAGE_FAULT_SWITCHES[kind])
    return options


def _switch_faults(
    rng,
    report: ChaosReport,
    *,
    round_number: int,
    plan: _Plan,
    hang_seconds,
    page_kinds: dict[str, list[str]] | None = None,
    oversized_items: int = OVERSIZED_ITEMS,
):
    """Faults for this round, drawn per bank; returns {bank: set of fault kinds switched on}."""
    from sandbox import clock, faults

    switched = {}
    for bank_code in BANK_CODES:
        kinds = set()
        options = {
            "error_rate": 0.0,
            "rate_limit_rate": 0.0,
            "hang_rate": 0.0,
            "malformed_rate": 0.0,
            "tokens_issued_before": None,
            "rng_seed": rng.randrange(1 << 30),
        }
        if page_kinds is not None:
            these = page_kinds.get(bank_code, [])
            options.update(_page_options(these, oversized_items=oversized_items))
            kinds |= set(these)
            if "malformed_row" in these:
                report.malformed_switches.append(
                    (bank_code, options["rng_seed"], options["malformed_row_rate"], clock.now())
                )
        if rng.random() < FAULTY_BANK_SHARE:
            options.update(
                error_rate=ERROR_RATE,
                error_statuses="500,502,503,504",
                rate_limit_rate=RATE_LIMIT_RATE,
                retry_after_seconds=1,
                hang_rate=HANG_RATE,
                hang_seconds=hang_seconds,
            )
            kinds |= {"5xx", "429", "hang"}
            if rng.random() < TOKEN_EXPIRY_SHARE:
                # A second back: the sandbox stamps tokens in whole seconds, and one issued in
                # the cutoff's own second must survive, or no refreshed token ever would.
                options["tokens_issued_before"] = clock.now() - timedelta(seconds=1)
                kinds.add("token_expiry")
        if (round_number, bank_code) == (plan.malformed_round, plan.malformed_bank):
            options["malformed_rate"] = MALFORMED_RATE
            kinds.add("malformed")
        faults.set_faults(bank_code, **options)
        for kind in kinds:
            report.switched_on[kind] += 1
        switched[bank_code] = kinds
    return switched


def _request_sync(user, bank_code: str, report: ChaosReport, runs: dict, context: dict) -> None:
    from fintrack.core.exceptions import ApplicationError
    from sync.models import SyncTrigger
    from sync.services import bank_sync_request

    report.syncs_requested += 1
    newest = _newest_run_id()
    try:
        run, created = bank_sync_request(
            user=user, bank_code=bank_code, trigger=SyncTrigger.SCHEDULE
        )
    except ApplicationError as exc:
        report.syncs_refused[exc.code] += 1
        return
    except Exception as exc:  # process mode: the broker refused the task message (Redis down)
        report.syncs_refused[f"send failed: {type(exc).__name__}"] += 1
        _track_new_runs(user, bank_code, newest, runs, context)
        return
    if created:
        runs[run.pk] = context


def _newest_run_id() -> int:
    from sync.models import SyncRun

    return SyncRun.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def _track_new_runs(user, bank_code: str, after: int, runs: dict, context: dict) -> None:
    """A run created although its request raised (its message not sent): the reaper's to heal."""
    from sync.models import SyncRun

    for pk in SyncRun.objects.filter(
        pk__gt=after, user=user, connection__bank_code=bank_code
    ).values_list("pk", flat=True):
        runs.setdefault(pk, context)


def _reconnect(user, bank_code: str, runs: dict, context: dict) -> None:
    """Connect the bank again the way a user does (demo approval where the bank asks for it)."""
    from consents import services as consent_services
    from consents.models import ConsentKind, ConsentStatus
    from sync.models import SyncTrigger
    from sync.services import bank_sync_request
    from users.onboarding.services import bank_connect

    result = bank_connect(user=user, bank_code=bank_code, trigger=SyncTrigger.USER,
                          already_connected_ok=True)  # fmt: skip
    if result.sync_run is not None and result.sync_started:
        runs[result.sync_run.pk] = context
        return
    consent = consent_services.consent_pending(
        user=user, bank_code=bank_code, kind=ConsentKind.ACCOUNTS
    )
    if consent is not None:
        consent = consent_services.consent_approve_demo(consent=consent)
    if consent is not None and consent.status == ConsentStatus.AUTHORIZED:
        run, created = bank_sync_request(user=user, bank_code=bank_code)
        if created:
            runs[run.pk] = context


class ChaosDriver(Protocol):
    """What runs the syncs when they are not run inline: bench/chaos_processes.py's workers."""

    def round_faults(self, round_number: int) -> set[str]:
        """The process faults this round will inject (recorded in its runs' contexts)."""

    def after_requests(self, round_number: int, run_ids: list[int]) -> None:
        """Inject the round's process faults mid-sync, then wait for its runs to finish."""

    def faults_stopped(self, run_ids: list[int]) -> None:
        """Every fault is off: wait for every run to finish, measuring how long it takes."""

    def settle(self, run_ids: list[int]) -> None:
        """Wait for these (clean round) runs to finish."""


def chaos_run(
    *,
    users,
    rounds: int,
    seed: int,
    hang_seconds: float = 1.0,
    verbose: bool = False,
    page_faults: bool = False,
    oversized_items: int = OVERSIZED_ITEMS,
    driver: ChaosDriver | None = None,
    report: ChaosReport | None = None,
) -> ChaosReport:
    """Run the rounds, the clean round and the comparison; returns the report.

    Without a driver every sync runs inline (eager Celery) in the order the RNG shuffles; with
    one, each user's three banks are requested back to back (they run at once on the workers)
    and the driver injects its faults and waits for the runs.
    """
    from audit.models import RawApiLog
    from sandbox import clock, faults

    started = time.perf_counter()
    rng = random.Random(seed)
    if report is None:
        report = ChaosReport(seed=seed)
    report.rounds, report.clients, report.page_faults = rounds, len(users), page_faults
    plan = _plan(rng, rounds=rounds, clients=len(users))
    page_plan = _page_plan(seed, rounds) if page_faults else {}
    first_log = RawApiLog.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    runs: dict[int, dict] = {}  # run id → what was switched on when it was requested
    revoked_until: dict[tuple[int, str], int] = {}
    pairs = [(index, bank_code) for index in range(len(users)) for bank_code in BANK_CODES]

    for round_number in range(rounds):
        page_kinds = None
        if page_faults:
            page_kinds = {
                bank_code: page_plan.get((round_number, bank_code), []) for bank_code in BANK_CODES
            }
        switched = _switch_faults(
            rng, report, round_number=round_number, plan=plan, hang_seconds=hang_seconds,
            page_kinds=page_kinds, oversized_items=oversized_items,
        )  # fmt: skip
        process_kinds = driver.round_faults(round_number) if driver is not None else set()
        if round_number == plan.revoke_round:
            index, bank_code = plan.revoke_target
            faults.revoke_consents(bank_code, client_id=_client_id(users[index], bank_code))
            revoked_until[plan.revoke_target] = plan.reconnect_round
            report.revoked.append(f"{_client_id(users[index], bank_code)}@{bank_code}")
        order = list(pairs)
        rng.shuffle(order)
        if driver is not None:  # one user's three banks at once
            user_order = list(dict.fromkeys(index for index, _bank in order))
            order.sort(key=lambda pair: user_order.index(pair[0]))
        before = set(runs)
        for index, bank_code in order:
            context = {
                "round": round_number,
                "faults": switched[bank_code] | process_kinds,
                "revoked": round_number < revoked_until.get((index, bank_code), -1),
            }
            if round_number == plan.reconnect_round and (index, bank_code) in revoked_until:
                _reconnect(users[index], bank_code, runs, context)
                report.reconnected.append(f"{_client_id(users[index], bank_code)}@{bank_code}")
                continue
            _request_sync(users[index], bank_code, report, runs, context)
        if driver is not None:
            driver.after_requests(round_number, sorted(set(runs) - before))
        if verbose:
            print(f"  round {round_number + 1}/{rounds}: {len(runs)} runs so far, "
                  f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
        clock.advance(hours=rng.uniform(6, 30))

    # Faults off, the clock frozen: the clean round reads exactly what the truth describes.
    faults.clear_faults()
    if driver is not None:
        driver.faults_stopped(sorted(runs))
    clock.freeze()
    before = set(runs)
    for index, bank_code in pairs:
        context = {"round": rounds, "faults": set(), "revoked": False}
        _request_sync(users[index], bank_code, report, runs, context)
    if driver is not None:
        driver.settle(sorted(set(runs) - before))

    met = _count_faults_seen(report, first_log=first_log)
    _compare_with_truth(report, users)
    _check_connections(report, users)
    _check_runs(report, runs, met)
    if driver is None:
        report.sync_process_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report.seconds = time.perf_counter() - started
    return report


# --- Checking -----------------------------------------------------------------------------------


def _count_faults_seen(report: ChaosReport, *, first_log: int) -> dict[str, Counter]:
    """Count the faults FinTrack's raw log shows; returns the page faults met per correlation
    id (a run's), from the sandbox's X-Sandbox-Fault header."""
    from audit.models import RawApiLog
    from sandbox.faults import FAULT_HEADER

    header = FAULT_HEADER.lower()
    met: dict[str, Counter] = {}
    responses = RawApiLog.objects.filter(pk__gt=first_log, direction="response")
    rows = responses.values_list("status_code", "error", "headers", "correlation_id")
    for status, error, headers, correlation_id in rows.iterator(chunk_size=2000):
        if status is not None and status >= 500:
            report.faults_seen["5xx"] += 1
        elif status == 429:
            report.faults_seen["429"] += 1
        elif status == 401:
            report.faults_seen["401 (token refreshed)"] += 1
        elif status == 403:
            report.faults_seen["403 consent"] += 1
        elif error and "Timeout" in error:
            report.faults_seen["timeout (hang)"] += 1
        elif error:
            report.faults_seen["transport error"] += 1
        for name, value in (headers or {}).items():
            if name.lower() == header:
                for kind in str(value).split(","):
                    report.page_faults_met[kind] += 1
                    met.setdefault(correlation_id, Counter())[kind] += 1
    return met


def _signed(item: dict) -> Decimal:
    amount = Decimal(item["amount"]["amount"])
    return -amount if item["creditDebitIndicator"] == "Debit" else amount


def _compare_with_truth(report: ChaosReport, users) -> None:
    """Stored accounts, balances and transactions against the sandbox at its frozen clock."""
    from banking.clients import parsing
    from banking.models import Account, Transaction
    from sandbox.ground_truth import client_bank_truth

    for user in users:
        for bank_code in BANK_CODES:
            client_id = _client_id(user, bank_code)
            truth = client_bank_truth(client_id, bank_code)
            label = f"{client_id}@{bank_code}"
            accounts = {
                a.bank_account_id: a
                for a in Account.objects.filter(user=user, bank_code=bank_code, is_active=True)
            }
            expected_accounts = {item["accountId"] for item in truth["accounts"]}
            if set(accounts) != expected_accounts:
                report.wrong_accounts.append(f"{label}: accounts {sorted(accounts)}")
            for account_id, balance in truth["balances"].items():
                stored = accounts.get(account_id)
                if stored is not None and stored.current_balance != Decimal(balance):
                    report.wrong_accounts.append(
                        f"{label} {account_id}: balance {stored.current_balance} != {balance}"
                    )
            expected = {}
            tied: set[str] = set()
            for items in truth["transactions"].values():
                tied |= _count_ties(report, items)
                for item in items:
                    expected[(item["accountId"], item["transactionId"])] = (
                        _signed(item),
                        parsing.transaction_status(item.get("status") or "booked"),
                        parsing.to_datetime(item["bookingDateTime"]),
                    )
            malformed = _served_malformed(report, bank_code, expected)
            rows = Transaction.objects.filter(user=user, bank_code=bank_code).values_list(
                "account__bank_account_id", "bank_transaction_id", "amount", "status",
                "booking_date",
            )  # fmt: skip
            stored: dict[tuple[str, str], tuple] = {}
            for account_id, transaction_id, amount, status, booked in rows:
                key = (account_id, transaction_id)
                if key in stored:
                    report.duplicated.append(f"{label} {transaction_id} stored twice")
                stored[key] = (amount, status, booked)
            report.transactions_expected += len(expected)
            report.transactions_stored += len(stored)
            for key in expected.keys() - stored.keys():
                report.lost.append(f"{label} {key[1]}")
                if key in malformed:
                    report.malformed_lost.append(f"{label} {key[1]}")
                if key[1] in tied:
                    report.ties["lost"] += 1
            for key in stored.keys() - expected.keys():
                # A row the bank no longer serves: a pending row whose posted twin replaced it.
                report.duplicated.append(f"{label} {key[1]} (not served any more)")
            for key in expected.keys() & stored.keys():
                if stored[key] != expected[key]:
                    report.wrong.append(f"{label} {key[1]}: {stored[key]} != {expected[key]}")


def _count_ties(report: ChaosReport, items: list[dict]) -> set[str]:
    """Tie groups of one account's rows (newest first, as listed) and those straddling a page
    boundary of SYNC_PAGE_LIMIT; returns the ids of the tied rows."""
    from django.conf import settings

    limit = settings.SYNC_PAGE_LIMIT
    report.ties["limit"] = limit
    tied: set[str] = set()
    start = 0
    while start < len(items):
        end = start + 1
        while end < len(items) and items[end]["bookingDateTime"] == items[start]["bookingDateTime"]:
            end += 1
        if end - start > 1:
            report.ties["groups"] += 1
            report.ties["rows"] += end - start
            report.ties["straddling"] += int(start // limit != (end - 1) // limit)
            tied.update(item["transactionId"] for item in items[start:end])
        start = end
    return tied


def _served_malformed(report: ChaosReport, bank_code: str, expected: dict) -> set[tuple]:
    """Rows the bank served with a malformed amount in some round (booked by then), all of which
    it serves well-formed now; counted in the report."""
    from sandbox.faults import row_malformed

    switches = [entry for entry in report.malformed_switches if entry[0] == bank_code]
    found = {
        key
        for key, (_amount, _status, booked) in expected.items()
        if any(
            booked is not None and booked <= now and row_malformed(bank, seed, rate, key[1])
            for bank, seed, rate, now in switches
        )
    }
    report.malformed_served += len(found)
    return found


def _check_connections(report: ChaosReport, users) -> None:
    """After the clean round every connection with a usable consent is ready, without an error."""
    from banking.models import BankConnection, ConnectionStatus
    from consents.models import ConsentKind
    from consents.selectors import consent_active

    for connection in BankConnection.objects.filter(user__in=users).select_related("user"):
        consent = consent_active(
            user=connection.user, bank_code=connection.bank_code, kind=ConsentKind.ACCOUNTS
        )
        label = f"{connection.client_id}@{connection.bank_code}"
        if consent is None:
            report.wrong_connections.append(f"{label}: no usable consent after reconnecting")
        elif connection.status != ConnectionStatus.READY or connection.last_error:
            report.wrong_connections.append(f"{label}: {connection.status} {connection.last_error}")


# Failure codes each injected fault explains; anything else is an unexplained failure.
EXPLAINED_BY = {
    "bank_unavailable": {"5xx", "429", "hang"},
    # The bank's circuit breaker opened after repeated 5xx/timeouts (banking/clients/circuit.py).
    "bank_circuit_open": {"5xx", "hang"},
    "bank_bad_response": {"malformed", *PAGE_FAULTS},
    "worker_lost": {"kill_worker", "kill_child", "memory_guard"},
}  # bank_auth_failed is not here: an expired token is refreshed once, and must then work
PROCESS_FAULTS = ("kill_child", "kill_worker", "redis_restart", "db_terminate")
# What a run whose read was cut short may end as (`partial`: its rows so far kept, watermark not
# moved past what it missed; the next sync goes on).
PARTIAL = "partial"


def _race_failure(run) -> bool:
    """A failure that is a bug whatever the faults: an unhandled error, a constraint violation."""
    return run.error_code == "internal_error" or "IntegrityError" in (run.error or "")


def _check_runs(report: ChaosReport, runs: dict[int, dict], met: dict[str, Counter]) -> None:
    """Every run finished, and its recorded outcome is what the faults of its round explain."""
    from django.db.models import Max

    from banking.models import Account
    from sync.models import SyncRun, SyncStatus

    terminal = {SyncStatus.SUCCEEDED, SyncStatus.FAILED, PARTIAL}
    latest_success: dict[int, SyncRun] = {}
    latest: dict[int, int] = {}  # connection → its last run (one runs at a time: the last pk)
    for run in SyncRun.objects.filter(pk__in=runs).select_related("connection").order_by("pk"):
        context = runs[run.pk]
        latest[run.connection_id] = run.pk
        outcome = f"{run.status}:{run.error_code}" if run.error_code else run.status
        report.runs_by_outcome[outcome] += 1
        if run.error_code == "bank_bad_response":
            report.faults_seen["bank_bad_response (failed its run)"] += 1
        label = f"run {run.pk} (round {context['round'] + 1}, {run.connection.bank_code})"
        pages_met = met.get(str(run.correlation_id), Counter())
        faults_on = context["faults"] | set(pages_met)
        page_faults_on = faults_on & set(PAGE_FAULTS)
        process_faults_on = faults_on & set(PROCESS_FAULTS)
        if pages_met["repeat_page"] > UNBOUNDED_REPEATS:
            report.unbounded_paging.append(
                f"{label}: read {pages_met['repeat_page']} repeated pages, ended {outcome}"
            )
        if run.status not in terminal:
            report.bad_runs.append(f"{label}: left {run.status} (step {run.step})")
        elif run.finished_at is None or run.started_at is None:
            report.bad_runs.append(f"{label}: {run.status} without start/finish time")
        elif run.status == SyncStatus.SUCCEEDED:
            if run.error or run.error_code or run.progress != 100:
                report.bad_runs.append(
                    f"{label}: succeeded with error {run.error_code!r} {run.error[:80]!r}"
                )
            elif context["revoked"]:
                report.bad_runs.append(f"{label}: succeeded on a revoked consent")
            latest_success[run.connection_id] = run
        elif run.status == PARTIAL:
            # Partial: a page fault cut a read short, or an optional step (products,
            # agreements) failed at the bank (issue 21: recorded in step_errors, retried alone).
            step_codes = {entry.get("code", "") for entry in run.step_errors or []}
            steps_explained = any(
                EXPLAINED_BY.get(code, set()) & faults_on for code in step_codes
            ) or bool(step_codes and process_faults_on)
            if not (page_faults_on or steps_explained):
                report.bad_runs.append(
                    f"{label}: partial without a page fault or a failed optional step "
                    f"({run.error[:80]}; steps {sorted(step_codes)}; faults {sorted(faults_on)})"
                )
        elif _race_failure(run):
            report.race_failures.append(
                f"{label}: failed {run.error_code} ({run.error[:120]}) with faults "
                f"{sorted(faults_on)}"
            )
        elif not run.error or not run.error_code:
            report.bad_runs.append(f"{label}: failed without an error code and message")
        elif run.error_code == "consent_required":
            if not context["revoked"]:
                report.bad_runs.append(f"{label}: consent_required with a valid consent")
        elif not (
            EXPLAINED_BY.get(run.error_code, set()) & faults_on
            or page_faults_on  # a page fault may stop a read with a code of its own
            or process_faults_on  # as may a process fault (never internal_error: see above)
        ):
            report.bad_runs.append(
                f"{label}: failed {run.error_code} ({run.error[:80]}) with faults "
                f"{sorted(faults_on)}"
            )
    for connection_id, run in latest_success.items():
        if latest[connection_id] != run.pk:
            continue  # a later run (failed, partial) may have stored rows past its watermark
        connection = run.connection
        connection.refresh_from_db()
        if connection.last_success_at != run.finished_at:
            report.bad_runs.append(f"run {run.pk}: succeeded but the connection says otherwise")
        # The last successful run moved each account's watermark up to its newest stored row.
        accounts = Account.objects.filter(connection_id=connection_id, is_active=True).annotate(
            newest=Max("transactions__booking_date")
        )
        for account in accounts:
            watermark = account.transactions_synced_through
            if account.newest is not None and (watermark is None or watermark < account.newest):
                report.bad_runs.append(
                    f"run {run.pk}: succeeded but {account.bank_account_id}'s watermark "
                    f"{watermark} is behind its newest row {account.newest}"
                )


# --- The script ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(args, port: int) -> dict:
    base = f"http://127.0.0.1:{port}/sandbox"
    env = {
        "DJANGO_SETTINGS_MODULE": "fintrack.settings",
        "FINTRACK_TESTING": "0",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "chaos-secret-key-not-for-production-0123456789abcdef",
        "BANK_TEAM_SECRET": "chaos-team-secret",
        "CELERY_TASK_ALWAYS_EAGER": "true",  # the task body (with its retries) runs inline
        "LOG_LEVEL": "ERROR",
        "SANDBOX_ENABLED": "true",
        "DEMO_BANK_CLIENT_SELF_SIGN": "true",
        "SANDBOX_FAULTS": "",
        # Hangs must outlast the client's timeout; backoff stays short so the run is quick.
        "BANK_TIMEOUT_SECONDS": str(args.hang_seconds / 2),
        "BANK_RETRY_BACKOFF_SECONDS": "0.01",
        "BANK_RETRY_MAX_SLEEP_SECONDS": "0.05",
        **{f"{code.upper()}_BASE_URL": f"{base}/{code}" for code in BANK_CODES},
    }
    if args.embedded:
        env["DATABASE_URL"] = f"sqlite:///{ROOT / 'var' / 'chaos.sqlite3'}"
    else:
        env["DATABASE_URL"] = args.database_url
    return env


def _fresh_database(args) -> None:
    """Start from an empty database of the script's own (never any other)."""
    if args.embedded:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{ROOT / 'var' / 'chaos.sqlite3'}{suffix}").unlink(missing_ok=True)
        return
    import psycopg

    name = args.database_url.rsplit("/", 1)[1]
    if not name.startswith("fintrack_chaos"):
        raise SystemExit(f"refusing to recreate database {name!r}: use fintrack_chaos*")
    admin_url = args.database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def _start_sandbox(port: int, env: dict) -> subprocess.Popen:
    log = open(ROOT / "var" / "log" / "chaos_sandbox.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_sandbox", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("run_sandbox exited; see var/log/chaos_sandbox.log")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/sandbox/vbank/products", timeout=2)
            return process
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise SystemExit("run_sandbox did not answer within 60 s")


def main() -> int:
    if "--processes" in sys.argv[1:]:
        sys.path.insert(0, str(ROOT))
        from bench import chaos_processes

        return chaos_processes.main([arg for arg in sys.argv[1:] if arg != "--processes"])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=None, help="default: random, printed")
    parser.add_argument("--rounds", type=int, default=None, help="default 20 (--ci: 5)")
    parser.add_argument("--clients", type=int, default=None, help="default 4 (--ci: 2)")
    parser.add_argument("--ci", action="store_true", help="the CI size: 2 clients, 5 rounds")
    parser.add_argument("--hang-seconds", type=float, default=1.0)
    parser.add_argument(
        "--classic", action="store_true", help="issue 10's faults only (no transaction-page faults)"
    )
    parser.add_argument("--oversized-items", type=int, default=OVERSIZED_ITEMS)
    parser.add_argument("--embedded", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument(
        "--processes",
        action="store_true",
        help="real Celery workers and process faults (bench/chaos_processes.py --help)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "CHAOS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fintrack_chaos"
        ),
    )
    args = parser.parse_args()
    args.rounds = args.rounds or (5 if args.ci else 20)
    args.clients = min(args.clients or (2 if args.ci else 4), len(TIED_CLIENTS_FIRST))
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    port = _free_port()
    env = _environment(args, port)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    (ROOT / "var" / "log").mkdir(parents=True, exist_ok=True)
    _fresh_database(args)

    import django

    django.setup()
    from django.core.management import call_command

    from sandbox import clock

    print(f"chaos sync: seed {seed} (replay with --seed {seed})", flush=True)
    call_command("migrate", verbosity=0, interactive=False)
    sandbox = _start_sandbox(port, env)
    try:
        clock.reset(at=datetime.now().astimezone())
        users = chaos_prepare(clients=args.clients, client_numbers=TIED_CLIENTS_FIRST)
        report = chaos_run(
            users=users, rounds=args.rounds, seed=seed, hang_seconds=args.hang_seconds,
            verbose=True, page_faults=not args.classic, oversized_items=args.oversized_items,
        )  # fmt: skip
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=15)
    for line in report.lines():
        print(line)
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "chaos_sync.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return 0 if report.problems() == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
