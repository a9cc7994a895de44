"""Chaos sync: many rounds of syncs against sandbox banks with faults on, then a clean round and a
comparison of everything stored with the sandbox's ground truth.

Each round switches faults on at random per bank (5xx, 429 with Retry-After, hangs past the
client timeout, early token expiry), one round revokes one client's consents at one bank (a later
round connects it again through the normal service path), one round serves malformed bodies at
one bank, and the sandbox clock moves forward between rounds (so pending transactions post under
new ids). Then faults go off, the clock is frozen, one clean round runs, and the script prints
transactions lost / duplicated / wrong, connections in a wrong state and sync runs whose recorded
outcome does not match what happened. All of them must be 0. The RNG is seeded; the seed is
printed, and the same seed replays the same plan.

    .venv/bin/python bench/chaos_sync.py                  # PostgreSQL db fintrack_chaos
    .venv/bin/python bench/chaos_sync.py --embedded       # SQLite file var/chaos.sqlite3
    .venv/bin/python bench/chaos_sync.py --seed 7 --rounds 30 --clients 4

Over real HTTP: the sandbox runs as `manage.py run_sandbox` in a subprocess sharing the database.
The engine (`chaos_prepare`, `chaos_run`) is also what sync/tests/test_chaos.py runs, shorter.
"""

import argparse
import json
import os
import random
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

ROOT = Path(__file__).resolve().parent.parent
BANK_CODES = ("vbank", "abank", "sbank")
# The fault mix, per request while a bank's faults are on.
ERROR_RATE = 0.10
RATE_LIMIT_RATE = 0.05
HANG_RATE = 0.02
MALFORMED_RATE = 0.5  # only at one bank in one round: a few truncated bodies
FAULTY_BANK_SHARE = 0.75  # the chance a bank has faults on in a round
TOKEN_EXPIRY_SHARE = 0.3  # the chance a faulty bank also kills every token issued so far


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

    def problems(self) -> int:
        return sum(
            len(items)
            for items in (
                self.lost,
                self.duplicated,
                self.wrong,
                self.wrong_accounts,
                self.wrong_connections,
                self.bad_runs,
            )
        )

    def lines(self) -> list[str]:
        def few(items: list[str]) -> str:
            return f"  e.g. {items[:3]}" if items else ""

        return [
            f"chaos sync: seed {self.seed}, {self.rounds} rounds + 1 clean round, "
            f"{self.clients} clients x {len(BANK_CODES)} banks, {self.seconds:.0f} s",
            f"  syncs requested {self.syncs_requested}, refused {dict(self.syncs_refused)}, "
            f"runs {dict(self.runs_by_outcome)}",
            f"  faults switched on (bank-rounds): {dict(self.switched_on)}",
            f"  faults FinTrack met (bank exchanges): {dict(self.faults_seen)}",
            f"  consents revoked: {self.revoked}; connected again: {self.reconnected}",
            f"  transactions expected {self.transactions_expected}, "
            f"stored {self.transactions_stored}",
            f"  transactions lost: {len(self.lost)}{few(self.lost)}",
            f"  transactions duplicated: {len(self.duplicated)}{few(self.duplicated)}",
            f"  transactions wrong: {len(self.wrong)}{few(self.wrong)}",
            f"  accounts/balances wrong: {len(self.wrong_accounts)}{few(self.wrong_accounts)}",
            f"  connections in a wrong state: {len(self.wrong_connections)}"
            f"{few(self.wrong_connections)}",
            f"  sync runs whose outcome does not match what happened: {len(self.bad_runs)}"
            f"{few(self.bad_runs)}",
            "  RESULT: " + ("OK, all zero" if self.problems() == 0 else "FAILED"),
        ]

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
        }


# --- Setting up ---------------------------------------------------------------------------------


def chaos_prepare(*, clients: int, per_year: int | None = None, months: int | None = None):
    """Register `clients` users and connect each to every bank (consents approved)."""
    from banking.services.connections import connection_get_or_create
    from consents import services as consent_services
    from consents.models import ConsentKind, ConsentStatus
    from sandbox.volume import set_client_volume
    from users.services import user_create

    users = []
    for number in range(1, clients + 1):
        user = user_create(email=f"chaos{number}@example.com", password="Chaos-pass-2026!")
        if per_year is not None:
            set_client_volume(user.external_client_id, per_year, history_months=months)
        for bank_code in BANK_CODES:
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


def _switch_faults(rng, report: ChaosReport, *, round_number: int, plan: _Plan, hang_seconds):
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
    try:
        run, created = bank_sync_request(
            user=user, bank_code=bank_code, trigger=SyncTrigger.SCHEDULE
        )
    except ApplicationError as exc:
        report.syncs_refused[exc.code] += 1
        return
    if created:
        runs[run.pk] = context


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


def chaos_run(
    *, users, rounds: int, seed: int, hang_seconds: float = 1.0, verbose: bool = False
) -> ChaosReport:
    """Run the rounds, the clean round and the comparison; returns the report."""
    from audit.models import RawApiLog
    from sandbox import clock, faults

    started = time.perf_counter()
    rng = random.Random(seed)
    report = ChaosReport(seed=seed, rounds=rounds, clients=len(users))
    plan = _plan(rng, rounds=rounds, clients=len(users))
    first_log = RawApiLog.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    runs: dict[int, dict] = {}  # run id → what was switched on when it was requested
    revoked_until: dict[tuple[int, str], int] = {}
    pairs = [(index, bank_code) for index in range(len(users)) for bank_code in BANK_CODES]

    for round_number in range(rounds):
        switched = _switch_faults(
            rng, report, round_number=round_number, plan=plan, hang_seconds=hang_seconds
        )
        if round_number == plan.revoke_round:
            index, bank_code = plan.revoke_target
            faults.revoke_consents(bank_code, client_id=users[index].external_client_id)
            revoked_until[plan.revoke_target] = plan.reconnect_round
            report.revoked.append(f"{users[index].external_client_id}@{bank_code}")
        order = list(pairs)
        rng.shuffle(order)
        for index, bank_code in order:
            context = {
                "round": round_number,
                "faults": switched[bank_code],
                "revoked": round_number < revoked_until.get((index, bank_code), -1),
            }
            if round_number == plan.reconnect_round and (index, bank_code) in revoked_until:
                _reconnect(users[index], bank_code, runs, context)
                report.reconnected.append(f"{users[index].external_client_id}@{bank_code}")
                continue
            _request_sync(users[index], bank_code, report, runs, context)
        if verbose:
            print(f"  round {round_number + 1}/{rounds}: {len(runs)} runs so far", flush=True)
        clock.advance(hours=rng.uniform(6, 30))

    # Faults off, the clock frozen: the clean round reads exactly what the truth describes.
    faults.clear_faults()
    clock.freeze()
    for index, bank_code in pairs:
        context = {"round": rounds, "faults": set(), "revoked": False}
        _request_sync(users[index], bank_code, report, runs, context)

    _count_faults_seen(report, first_log=first_log)
    _compare_with_truth(report, users)
    _check_connections(report, users)
    _check_runs(report, runs)
    report.seconds = time.perf_counter() - started
    return report


# --- Checking -----------------------------------------------------------------------------------


def _count_faults_seen(report: ChaosReport, *, first_log: int) -> None:
    from audit.models import RawApiLog

    responses = RawApiLog.objects.filter(pk__gt=first_log, direction="response")
    for status, error in responses.values_list("status_code", "error"):
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
            truth = client_bank_truth(user.external_client_id, bank_code)
            label = f"{user.external_client_id}@{bank_code}"
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
            for items in truth["transactions"].values():
                for item in items:
                    expected[(item["accountId"], item["transactionId"])] = (
                        _signed(item),
                        parsing.transaction_status(item.get("status") or "booked"),
                        parsing.to_datetime(item["bookingDateTime"]),
                    )
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
            for key in stored.keys() - expected.keys():
                # A row the bank no longer serves: a pending row whose posted twin replaced it.
                report.duplicated.append(f"{label} {key[1]} (not served any more)")
            for key in expected.keys() & stored.keys():
                if stored[key] != expected[key]:
                    report.wrong.append(f"{label} {key[1]}: {stored[key]} != {expected[key]}")


def _check_connections(report: ChaosReport, users) -> None:
    """After the clean round every connection with a usable consent is ready, without an error."""
    from banking.models import BankConnection, ConnectionStatus
    from consents.models import ConsentKind
    from consents.selectors import consent_active

    for connection in BankConnection.objects.filter(user__in=users).select_related("user"):
        consent = consent_active(
            user=connection.user, bank_code=connection.bank_code, kind=ConsentKind.ACCOUNTS
        )
        label = f"{connection.user.external_client_id}@{connection.bank_code}"
        if consent is None:
            report.wrong_connections.append(f"{label}: no usable consent after reconnecting")
        elif connection.status != ConnectionStatus.READY or connection.last_error:
            report.wrong_connections.append(f"{label}: {connection.status} {connection.last_error}")


# Failure codes each injected fault explains; anything else is an unexplained failure.
EXPLAINED_BY = {
    "bank_unavailable": {"5xx", "429", "hang"},
    "bank_bad_response": {"malformed"},
}  # bank_auth_failed is not here: an expired token is refreshed once, and must then work


def _check_runs(report: ChaosReport, runs: dict[int, dict]) -> None:
    """Every run finished, and its recorded outcome is what the faults of its round explain."""
    from django.db.models import Max

    from banking.models import Account
    from sync.models import SyncRun, SyncStatus

    latest_success: dict[int, SyncRun] = {}
    for run in SyncRun.objects.filter(pk__in=runs).select_related("connection").order_by("pk"):
        context = runs[run.pk]
        outcome = f"{run.status}:{run.error_code}" if run.error_code else run.status
        report.runs_by_outcome[outcome] += 1
        if run.error_code == "bank_bad_response":
            report.faults_seen["malformed body (failed its run)"] += 1
        label = f"run {run.pk} (round {context['round'] + 1}, {run.connection.bank_code})"
        if run.status not in (SyncStatus.SUCCEEDED, SyncStatus.FAILED):
            report.bad_runs.append(f"{label}: left {run.status}")
        elif run.finished_at is None or run.started_at is None:
            report.bad_runs.append(f"{label}: {run.status} without start/finish time")
        elif run.status == SyncStatus.SUCCEEDED:
            if run.error or run.error_code or run.progress != 100:
                report.bad_runs.append(f"{label}: succeeded with error {run.error_code!r}")
            elif context["revoked"]:
                report.bad_runs.append(f"{label}: succeeded on a revoked consent")
            latest_success[run.connection_id] = run
        elif not run.error or not run.error_code:
            report.bad_runs.append(f"{label}: failed without an error code and message")
        elif run.error_code == "consent_required":
            if not context["revoked"]:
                report.bad_runs.append(f"{label}: consent_required with a valid consent")
        elif not (EXPLAINED_BY.get(run.error_code, set()) & context["faults"]):
            report.bad_runs.append(
                f"{label}: failed {run.error_code} ({run.error[:80]}) with faults "
                f"{sorted(context['faults'])}"
            )
    for connection_id, run in latest_success.items():
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=None, help="default: random, printed")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--hang-seconds", type=float, default=1.0)
    parser.add_argument("--embedded", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "CHAOS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fintrack_chaos"
        ),
    )
    args = parser.parse_args()
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
        users = chaos_prepare(clients=args.clients)
        report = chaos_run(
            users=users, rounds=args.rounds, seed=seed, hang_seconds=args.hang_seconds,
            verbose=True,
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
