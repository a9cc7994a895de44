"""What every benchmark shares: the environment, the bench database, the sandbox over HTTP, data.

Import this module before anything from Django: it sets the environment (a dedicated PostgreSQL
database, Redis db 13, the sandbox banks on a free loopback port, DEBUG off) and calls
django.setup(). Figures are medians of several runs with their min–max, and ratios of two things
measured in the same run, because the machines are shared and noisy.
"""

import json
import os
import random
import resource
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
PYTHON = str(ROOT / ".venv" / "bin" / "python")

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fintrack_bench"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")

# The heavy client: 4 checking accounts at each of the three banks, ~3,400 transactions a year
# each over 6 years (~20,000 per account, ~9 a day). At ~9 a day the 3-day incremental overlap is
# ~30 rows, one page of 100: a second sync reads one page per account. (20,000 in ONE year would
# be ~55 a day, >1 page of overlap: no real person pays that often, so we keep the setting.)
HEAVY_CLIENT = "team260-1"
HEAVY_PER_YEAR = int(os.environ.get("BENCH_HEAVY_PER_YEAR", "3400"))
HEAVY_MONTHS = int(os.environ.get("BENCH_HEAVY_MONTHS", "72"))
HEAVY_CHECKING_ACCOUNTS = 4
BANK_CODES = ("vbank", "abank", "sbank")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SANDBOX_PORT = int(os.environ.get("BENCH_SANDBOX_PORT") or _free_port())
SANDBOX_URL = f"http://127.0.0.1:{SANDBOX_PORT}"

BENCH_ENV = {
    "DJANGO_SETTINGS_MODULE": "fintrack.settings",
    "FINTRACK_ENV": "embedded",
    "FINTRACK_TESTING": "0",
    "DJANGO_DEBUG": "false",  # DEBUG would keep every SQL query in memory
    "DJANGO_SECRET_KEY": "bench-secret-key-not-for-production-0123456789abcdef",
    "BANK_TEAM_SECRET": "bench-team-secret",
    "DATABASE_URL": DATABASE_URL,
    "DATABASE_CONN_MAX_AGE": "60",
    "CELERY_BROKER_URL": REDIS_URL,
    "CELERY_TASK_ALWAYS_EAGER": "false",
    "REDIS_CACHE_URL": REDIS_URL,
    "LOG_LEVEL": "WARNING",
    "SANDBOX_ENABLED": "true",
    # The sandbox control API's credential (header X-Sandbox-Control-Token), for this run only.
    "SANDBOX_CONTROL_TOKEN": os.environ.get("SANDBOX_CONTROL_TOKEN") or secrets.token_urlsafe(24),
    "DEMO_BANK_CLIENT_SELF_SIGN": "true",
    "SANDBOX_HEAVY_CLIENTS": (
        f"{HEAVY_CLIENT}:{HEAVY_PER_YEAR}:{HEAVY_MONTHS}:{HEAVY_CHECKING_ACCOUNTS}"
    ),
    "BENCH_SANDBOX_PORT": str(SANDBOX_PORT),
    **{f"{code.upper()}_BASE_URL": f"{SANDBOX_URL}/{code}" for code in BANK_CODES},
}
os.environ.update(BENCH_ENV)
sys.path.insert(0, str(ROOT))


def _ensure_database() -> None:
    """Create the bench database if it does not exist (never touches any other database)."""
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    admin_url = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


_ensure_database()

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

# Tables a wipe keeps: what migrations seed (categories, beat schedules) and Django's own.
_KEPT_TABLES = {
    "django_migrations",
    "django_content_type",
    "auth_permission",
    "django_site",
}


def migrate() -> None:
    """Bring the bench database to the current migrations (quiet when it is up to date)."""
    call_command("migrate", interactive=False, verbosity=0)


def wipe() -> None:
    """Empty every data table of the bench database (keeping migration-seeded rows), and Redis."""
    from banking.categorization import category_cache_clear
    from banking.models import TransactionCategory
    from banking.services.tokens import bank_token_cache_clear

    kept = _KEPT_TABLES | {TransactionCategory._meta.db_table}
    tables = [
        name
        for name in connection.introspection.table_names()
        if name not in kept and not name.startswith("django_celery_beat")
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE " + ", ".join(f'"{name}"' for name in tables) + " RESTART IDENTITY CASCADE"
        )
    redis_flush()
    bank_token_cache_clear()
    category_cache_clear()


def redis_flush() -> None:
    """Empty the bench's own Redis database (broker queue and cache), never another one."""
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def vacuum_analyze() -> None:
    """Fresh planner statistics after bulk loads, as autovacuum would give a long-lived table."""
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


# --- Processes --------------------------------------------------------------------------------


def sandbox_control_headers() -> dict[str, str]:
    """The credential of the sandbox control API (/sandbox/_control/…) for this bench run."""
    return {"X-Sandbox-Control-Token": BENCH_ENV["SANDBOX_CONTROL_TOKEN"]}


def _wait_http(
    url: str,
    *,
    seconds: float,
    process: subprocess.Popen | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before serving {url}")
        try:
            requests.get(url, timeout=1, headers=headers)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


def _stop(process: subprocess.Popen, *, seconds: float = 15) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=seconds)


def _log_file(name: str):
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    return open(RESULTS_DIR / f"{name}.log", "ab")


@contextmanager
def sandbox_server() -> Iterator[subprocess.Popen]:
    """`manage.py run_sandbox` in a subprocess on SANDBOX_PORT, sharing the bench database."""
    log = _log_file("sandbox")
    process = subprocess.Popen(
        [PYTHON, "manage.py", "run_sandbox", "--port", str(SANDBOX_PORT)],
        cwd=ROOT,
        env={**os.environ, **BENCH_ENV},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_http(
            f"{SANDBOX_URL}/sandbox/_control/clock",
            seconds=60,
            process=process,
            headers=sandbox_control_headers(),
        )
        yield process
    finally:
        _stop(process)
        log.close()


@contextmanager
def background(name: str, command: list[str], *, ready_url: str | None = None) -> Iterator:
    """Any helper process (Celery worker, gunicorn) with the bench environment, stopped at exit."""
    log = _log_file(name)
    process = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, **BENCH_ENV}, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        if ready_url:
            _wait_http(ready_url, seconds=60, process=process)
        yield process
    finally:
        _stop(process)
        log.close()


def free_port() -> int:
    """A free loopback port."""
    return _free_port()


# --- Users, consents, syncs -------------------------------------------------------------------


def sandbox_clock_freeze(at: datetime) -> None:
    """Freeze the sandbox clock at `at` (history anchored on that day): nothing new appears."""
    from sandbox import clock

    clock.reset(at=at)


def bench_now() -> datetime:
    """A fixed instant for a whole benchmark run (the start of the current minute, UTC)."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


def make_user(email: str, *, client_id: str | None = None, bank_codes=BANK_CODES):
    """A user; with `client_id`, that sandbox client at each of `bank_codes` (a demo client)."""
    from users.models import User

    user = User.objects.create_user(email=email, password="bench-password-123")
    if client_id is not None:
        client_id_give(user, client_id, bank_codes=bank_codes)
    return user


def client_id_give(user, client_id: str, *, bank_codes=BANK_CODES) -> None:
    """Make `user` the bank client `client_id` at each bank (as a demo client FinTrack proposed,
    so SBank's consent can be self-signed), through the connection's service."""
    from banking.services.connections import connection_client_id_set, connection_get_or_create

    for bank_code in bank_codes:
        connection = connection_get_or_create(user=user, bank_code=bank_code)
        connection_client_id_set(connection=connection, client_id=client_id, is_demo=True)


def client_id_of(user, bank_code: str = "vbank") -> str:
    """Who `user` is at `bank_code` (their connection's client id; "" when none)."""
    from banking.models import BankConnection

    connection = BankConnection.objects.filter(user=user, bank_code=bank_code).first()
    return connection.client_id if connection else ""


def connect_banks(user, bank_codes=BANK_CODES) -> list:
    """Both consents authorised at each bank (SBank through its demo approval); the connections."""
    from banking.services.connections import connection_get_or_create
    from consents import services as consent_services
    from consents.models import ConsentKind, ConsentStatus

    connections = []
    for bank_code in bank_codes:
        for kind in (ConsentKind.ACCOUNTS, ConsentKind.PRODUCTS):
            consent = consent_services.consent_ensure(user=user, bank_code=bank_code, kind=kind)
            if consent.status == ConsentStatus.PENDING:
                consent = consent_services.consent_approve_demo(consent=consent)
            if consent.status != ConsentStatus.AUTHORIZED:
                raise RuntimeError(f"{bank_code} {kind} consent is {consent.status}")
        connections.append(connection_get_or_create(user=user, bank_code=bank_code))
    return connections


def sync_now(connection_pk: int):
    """One sync run of a connection, executed here; returns the finished SyncRun."""
    from banking.models import BankConnection
    from sync.models import SyncRun, SyncTrigger
    from sync.services import sync_run_execute

    connection_row = BankConnection.objects.get(pk=connection_pk)
    run = SyncRun.objects.create(
        connection=connection_row, user_id=connection_row.user_id, trigger=SyncTrigger.USER
    )
    sync_run_execute(sync_run_id=run.pk)
    run.refresh_from_db()
    return run


def _stat_cpu_seconds(stat: str) -> float:
    """User + system CPU from the text of a /proc/<pid>/stat (after the command name)."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (all its threads) so far, from /proc (Linux)."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())


def machine_busy_seconds() -> float:
    """CPU time every core spent not idle so far, from /proc/stat (all processes, the kernel)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _processes_cpu_seconds() -> dict[int, tuple[str, float]]:
    """CPU used so far by every process on this machine: pid → (command name, seconds). Keyed by
    pid alone: a kernel worker's name changes with the work it does."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        found[int(stat.parent.name)] = (name, _stat_cpu_seconds(text))
    return found


def machine_load_while_idle(seconds: float = 2.0) -> tuple[float, list[tuple[str, float]]]:
    """The cores busy while this process sleeps `seconds`, and the three busiest processes then
    (command name, cores): what else the machine runs beside a measurement about to start."""
    before_busy, before = machine_busy_seconds(), _processes_cpu_seconds()
    time.sleep(seconds)
    busy, after = machine_busy_seconds() - before_busy, _processes_cpu_seconds()
    used = sorted(
        (
            (name, (cpu - before.get(pid, (name, 0.0))[1]) / seconds)
            for pid, (name, cpu) in after.items()
        ),
        key=lambda item: -item[1],
    )
    return busy / seconds, [item for item in used[:3] if item[1] > 0]


def postgres_cpu_seconds() -> float:
    """CPU used so far by every PostgreSQL process on this machine (backends, WAL writer, …)."""
    return sum(cpu for name, cpu in _processes_cpu_seconds().values() if name == "postgres")


def peak_rss_mb() -> float:
    """This process's peak resident memory (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bare_fetch_plan(user, bank_codes=BANK_CODES) -> list[dict]:
    """What a bare client needs to fetch the very pages a sync fetches: URLs' parts and headers."""
    from banking.services.clients import bank_client_for
    from banking.services.tokens import bank_token_get
    from consents.models import Consent, ConsentKind, ConsentStatus

    plans = []
    for bank_code in bank_codes:
        client = bank_client_for(bank_code, user=None)
        token = bank_token_get(bank_code=bank_code, client=client)
        client.close()
        consents = {
            consent.kind: consent.bank_consent_id
            for consent in Consent.objects.filter(
                user=user, bank_code=bank_code, status=ConsentStatus.AUTHORIZED
            )
        }
        plans.append(
            {
                "bank_code": bank_code,
                "base_url": f"{SANDBOX_URL}/{bank_code}",
                "token": token,
                "client_id": client_id_of(user, bank_code),
                "consent_id": consents[ConsentKind.ACCOUNTS],
                "product_consent_id": consents.get(ConsentKind.PRODUCTS),
            }
        )
    return plans


def bare_fetch(
    plans: list[dict], *, page_limit: int, planned: bool = False, paced: bool = False
) -> dict:
    """Fetch accounts, balances, every transaction page, products and agreements with plain
    `requests`, one bank after another, doing nothing with the bodies; returns calls and time.

    `paced`: each call first takes its bank's slot from FinTrack's own rate limiter (the shared
    schedule in Redis a sync's calls take theirs from, BANK_RATE_LIMIT_PER_SECOND): the fastest
    a client may fetch these pages under that limit.

    Transaction pages are a plain grid of `page_limit`, or with `planned` the sync's own pages:
    each account paged as `sync.reader.PagePlan` chooses from the booking times of the page
    before (the sync's repair pages, for a tie group its pages could not hold and lost a row of,
    are not among them: they are counted in the sync's own calls). `transactions` is then the
    bank's totalRecords."""
    import requests

    from banking.clients.ratelimit import limiter_for

    started = time.perf_counter()
    calls = 0
    transactions = 0
    with requests.Session() as session:
        for plan in plans:
            base = plan["base_url"]
            limiter = limiter_for(plan["bank_code"]) if paced else None
            headers = {
                "Accept": "application/json",
                "Authorization": f"Bearer {plan['token']}",
                "X-Requesting-Bank": os.environ.get("BANK_TEAM_ID", "team260"),
                "X-Consent-Id": plan["consent_id"],
            }
            client_id = {"client_id": plan["client_id"]}

            def get(
                path: str,
                params: dict,
                extra: dict | None = None,
                base=base,
                headers=headers,
                limiter=limiter,
            ):
                nonlocal calls
                calls += 1
                if limiter is not None:
                    limiter.acquire()
                response = session.get(
                    base + path, params=params, headers={**headers, **(extra or {})}, timeout=30
                )
                response.raise_for_status()
                return response.json()

            accounts = get("/accounts", client_id)["data"]["account"]
            for account in accounts:
                get(f"/accounts/{account['accountId']}/balances", client_id)
            read = _account_pages_planned if planned else _account_pages_grid
            for account in accounts:
                path = f"/accounts/{account['accountId']}/transactions"
                transactions += read(get, path, client_id, page_limit)
            get("/products", {})
            if plan["product_consent_id"]:
                get(
                    "/product-agreements",
                    client_id,
                    {"X-Product-Agreement-Consent-Id": plan["product_consent_id"]},
                )
    return {"seconds": time.perf_counter() - started, "calls": calls, "transactions": transactions}


def _account_pages_grid(get, path: str, client_id: dict, page_limit: int) -> int:
    """Every page of `page_limit` rows; the rows read."""
    transactions = 0
    for page in range(1, 100_000):
        body = get(path, {**client_id, "page": page, "limit": page_limit})
        transactions += len(body["data"]["transaction"])
        if not body.get("links", {}).get("next"):
            break
    return transactions


def _account_pages_planned(get, path: str, client_id: dict, page_limit: int) -> int:
    """The pages sync.reader.PagePlan chooses; the bank's totalRecords."""
    from sync.reader import PagePlan

    pages = PagePlan(page_limit)
    for _ in range(100_000):
        number, size = pages.next
        body = get(path, {**client_id, "page": number, "limit": size})
        items = body["data"]["transaction"]
        has_next = bool(body.get("links", {}).get("next"))
        keys = [item.get("bookingDateTime") for item in items]
        pages.advance(number, size, keys, has_next=has_next, regular=True)
        if not has_next:
            return body["meta"]["totalRecords"]
    return 0


def run_child(args: list[str], *, timeout: float, env: dict[str, str] | None = None) -> dict:
    """Run `python <args>` with the bench environment (and `env`); its last stdout line is a
    JSON result."""
    completed = subprocess.run(
        [PYTHON, *args],
        cwd=ROOT,
        env={**os.environ, **BENCH_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr[-4000:])
        raise RuntimeError(f"child {args} exited with {completed.returncode}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


# --- Synthetic money data (dashboard, analytics, transaction list) ----------------------------

_SPENDING = (
    ("Пятёрочка", "5411", "Supermarkets", 300, 4000),
    ("Перекрёсток", "5411", "Supermarkets", 300, 5000),
    ("Яндекс Такси", "4121", "Taxi", 200, 1500),
    ("Метро", "4111", "Transport", 50, 120),
    ("Шоколадница", "5814", "Restaurants", 300, 2500),
    ("Аптека Ригла", "5912", "Pharmacy", 200, 3000),
    ("Ozon", "5399", "Marketplace", 500, 9000),
    ("Кинотеатр", "7832", "Entertainment", 400, 1500),
)


def synthetic_user(
    email: str,
    *,
    accounts: int,
    days: int,
    per_day: float,
    today: date,
    seed: int = 1,
    recent_seed_days: int = 400,
):
    """A user with `accounts` checking accounts at VBank and `days` days of history ending today:
    random card spending at ~per_day a day per account plus monthly salary, rent and a
    subscription, written with bulk_create; then aggregates and an analytics snapshot.

    The last `recent_seed_days` days are drawn from per-day seeds, so two users with the same seed
    and different `days` have identical recent activity.
    """
    from banking.categorization import category_id_for
    from banking.models import Account, AccountType, BankConnection, ConnectionStatus, Transaction

    user = make_user(email)
    now = datetime.combine(today, dtime(12), tzinfo=UTC)
    connection_row = BankConnection.objects.create(
        user=user, bank_code="vbank", status=ConnectionStatus.READY, last_success_at=now
    )
    account_rows = Account.objects.bulk_create(
        [
            Account(
                user=user,
                connection=connection_row,
                bank_code="vbank",
                bank_account_id=f"acc-bench-{index}",
                identification=f"40817810{index:012d}",
                account_type=AccountType.CHECKING,
                currency="RUB",
                current_balance=Decimal("150000.00"),
                balance_as_of=now,
                transactions_synced_through=now,
            )
            for index in range(accounts)
        ]
    )
    batch: list[Transaction] = []
    total = 0
    for account in account_rows:
        for back in range(days):
            day = today - timedelta(days=back)
            rng = random.Random(f"{seed}:{account.bank_account_id}:{day.isoformat()}")
            items = []
            if day.day == 5:
                items.append(("Зарплата", "", "", Decimal("185000.00"), "ООО Ромашка"))
            if day.day == 10:
                items.append(("Аренда квартиры", "", "", Decimal("-45000.00"), "ИП Иванов"))
            if day.day == 15:
                items.append(("Яндекс Плюс", "5815", "Subscriptions", Decimal("-399.00"), ""))
            count = int(per_day * rng.uniform(0.5, 1.5) + rng.random())
            for _ in range(count):
                name, mcc, merchant_category, low, high = rng.choice(_SPENDING)
                amount = Decimal(rng.randrange(low * 100, high * 100)) / 100
                items.append((f"Оплата {name}", mcc, merchant_category, -amount, name))
            for index, (description, mcc, merchant_category, amount, counterparty) in enumerate(
                items
            ):
                booked = datetime.combine(day, dtime(8), tzinfo=UTC) + timedelta(
                    seconds=rng.randrange(0, 14 * 3600)
                )
                batch.append(
                    Transaction(
                        user=user,
                        account=account,
                        bank_code="vbank",
                        bank_transaction_id=f"tx-{account.pk}-{day:%Y%m%d}-{index}",
                        amount=amount,
                        currency="RUB",
                        booking_date=booked,
                        value_date=booked,
                        status="booked",
                        description=description,
                        merchant_name=counterparty if mcc else "",
                        merchant_category=merchant_category,
                        mcc=mcc,
                        counterparty=counterparty,
                        category_id=category_id_for(
                            description=description,
                            mcc=mcc,
                            merchant_category=merchant_category,
                            amount=amount,
                        ),
                        raw_json={"transactionId": f"tx-{day:%Y%m%d}-{index}", "bench": True},
                    )
                )
            if len(batch) >= 5000:
                Transaction.objects.bulk_create(batch)
                total += len(batch)
                batch = []
    if batch:
        Transaction.objects.bulk_create(batch)
        total += len(batch)
    return user, total


def refresh_derived(user, *, today: date) -> None:
    """Aggregates (as after a full sync) and the analytics snapshot, as the worker would."""
    from analytics.services import analytics_recompute
    from banking.services.money import money_refresh_after_sync

    money_refresh_after_sync(user=user, since_date=None)
    analytics_recompute(user=user, today=today)


def access_token(user) -> str:
    """A JWT access token for the user (what the frontend sends)."""
    from rest_framework_simplejwt.tokens import RefreshToken

    return str(RefreshToken.for_user(user).access_token)


# --- Figures ----------------------------------------------------------------------------------


def timed(function: Callable[[], object]) -> tuple[float, object]:
    """Wall-clock seconds of one call, and its result."""
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def stats(values: list[float]) -> dict:
    """Median, min, max and number of runs."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": len(values),
        "values": values,
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def fmt(stat: dict, unit: str = "", digits: int = 3) -> str:
    """`median (min–max, n runs)`."""
    return (
        f"{stat['median']:.{digits}f}{unit} "
        f"({stat['min']:.{digits}f}–{stat['max']:.{digits}f}, {stat['runs']} runs)"
    )


def target(name: str, value: float, *, at_most: float | None = None, at_least=None) -> dict:
    """A target check: holds when value ≤ at_most (or ≥ at_least)."""
    holds = value <= at_most if at_most is not None else value >= at_least
    bound = f"≤ {at_most}" if at_most is not None else f"≥ {at_least}"
    return {"name": name, "value": value, "bound": bound, "holds": bool(holds)}


def report(name: str, title: str, lines: list[str], targets: list[dict], data: dict) -> None:
    """Print the figures block and write bench/results/<name>.json."""
    width = 78
    print("=" * width)
    print(f"{title}")
    print("-" * width)
    for line in lines:
        print(f"  {line}")
    print("-" * width)
    for item in targets:
        verdict = "OK    " if item["holds"] else "MISSED"
        print(f"  [{verdict}] {item['name']}: {item['value']:.3f} (target {item['bound']})")
    print("=" * width, flush=True)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {
        "name": name,
        "title": title,
        "finished_at": datetime.now(UTC).isoformat(),
        "targets": targets,
        "lines": lines,
        **data,
    }
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(payload, indent=2, default=str))
