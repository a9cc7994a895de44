"""Chaos sync on real processes (issue 20): the chaos rounds of bench/chaos_sync.py run by two
Celery worker processes, with process faults injected mid-sync, and the targets checked.

The same rounds as the in-process chaos bench (bank faults: 5xx, 429, hangs, token expiry, a
revoked consent, truncated bodies, and the transaction-page faults: malformed rows, an oversized
page, a repeating page, short pages, early ends; live-style data with tied booking times), but:
- the syncs run on `--workers` (2) real `celery -A fintrack worker -c 1` processes, on a Redis of
  the bench's own (started on `--redis-port`, 6391 or a free port, without persistence) and the
  bench's own PostgreSQL database (default fintrack_chaos_processes, dropped and recreated);
- each user's three banks are requested back to back, so they run at once on the two workers
  (two syncs of one user finishing together: the aggregates race);
- a beat-equivalent thread sends `sync.reap_stale_runs` every SYNC_REAPER_PERIOD_SECONDS;
- every round injects one process fault once a run of the round is running, in turn:
  `kill_child` (kill -9 of a worker's pool process, the task's own), `kill_worker` (kill -9 of a
  whole worker, main process and pool, as an OOM kill or a lost node; a replacement starts),
  `redis_restart` (`redis-cli shutdown nosave` and start again: queued messages are lost),
  `db_terminate` (`pg_terminate_backend` of the workers' backends of this database only: they
  connect as application_name fintrack-chaos-worker);
- a monitor samples the workers' memory (VmRSS/VmHWM of each worker process and its pool
  children, from /proc) and the active runs: a queued run whose last sign of life (created,
  heartbeat, next retry) is older than SYNC_QUEUED_STALE_SECONDS, or a running one whose
  heartbeat is older than SYNC_HEARTBEAT_TIMEOUT_SECONDS, by more than one reaper period (and
  `--stuck-slack`), is stuck: the reaper did not heal it in time. After the last round, with all
  faults off, every run must be finished within SYNC_HEARTBEAT_TIMEOUT_SECONDS +
  SYNC_REAPER_PERIOD_SECONDS + `--settle-margin`;
- a worker that exits without being killed (a broker restart must not stop it) is a problem,
  and is replaced so the rounds go on.

Targets (printed, all must hold, the exit code says): 0 lost (including rows the bank served
malformed in one round and well-formed later), 0 duplicated, 0 runs stuck past one reaper period,
0 race failures (a run failed `internal_error` or with an IntegrityError, or an IntegrityError in
a worker's log), worker peak memory <= 300 MB (the largest single worker process), and the
seconds taken. Results: bench/results/chaos_processes.json; logs: var/log/chaos_*.log.

    .venv/bin/python bench/chaos_processes.py            # 4 clients, 20 rounds (make bench)
    .venv/bin/python bench/chaos_processes.py --ci       # 2 clients, 5 rounds (.ci/run)
    .venv/bin/python bench/chaos_sync.py --processes …   # the same
"""

import argparse
import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import chaos_sync  # noqa: E402  (stdlib only at import: Django is set up below)

CELERY = ROOT / ".venv" / "bin" / "celery"
LOG_DIR = ROOT / "var" / "log"
WORKER_APP_NAME = "fintrack-chaos-worker"  # PGAPPNAME: what db_terminate terminates
SANDBOX_APP_NAME = "fintrack-chaos-sandbox"
BENCH_APP_NAME = "fintrack-chaos-bench"
REAP_TASK = "sync.reap_stale_runs"
PROCESS_FAULTS = chaos_sync.PROCESS_FAULTS
SAMPLE_SECONDS = 0.25
MIB = 1024 * 1024


# --- Redis of our own ---------------------------------------------------------------------------


def _port_free(port: int) -> bool:
    """Nothing listens on the port (connections of a stopped server in TIME_WAIT are fine)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class PrivateRedis:
    """A redis-server the bench starts, restarts and stops on its own port (never 6379)."""

    def __init__(self, port: int):
        if port == 6379:
            raise SystemExit("refusing to use the shared Redis on 6379")
        self.port = port
        self.log = LOG_DIR / "chaos_redis.log"

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def ping(self) -> bool:
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True, timeout=5
        )
        return result.stdout.strip() == "PONG"

    @property
    def pidfile(self) -> Path:
        return Path(f"/tmp/fintrack-chaos-redis-{self.port}.pid")

    def owned(self) -> bool:
        """Whether the server answering on the port is the one this bench started."""
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), "info", "server"],
            capture_output=True, text=True, timeout=5,
        )  # fmt: skip
        found = re.search(r"process_id:(\d+)", result.stdout)
        try:
            return bool(found) and found.group(1) == self.pidfile.read_text().strip()
        except OSError:
            return False

    def start(self) -> None:
        if not _port_free(self.port):
            raise RuntimeError(f"port {self.port} is taken: not starting Redis there")
        self.pidfile.unlink(missing_ok=True)
        subprocess.run(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--daemonize", "yes",
             "--save", "", "--appendonly", "no", "--dir", "/tmp",
             "--pidfile", str(self.pidfile),
             "--logfile", str(self.log)],
            check=True, timeout=10,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not (self.ping() and self.owned()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"our redis-server on {self.port} did not answer")
            time.sleep(0.05)

    def sync_messages(self) -> set[int] | None:
        """Run ids with a `sync.connection_sync` message in the broker (queued or unacked), or
        None when Redis does not answer."""
        import redis

        try:
            client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
            # Sync runs go to the `sync` queue (CELERY_TASK_ROUTES); the others are read too, so
            # a message routed elsewhere by mistake is still seen.
            raw = []
            for queue in ("sync", "analytics", "maintenance", "celery"):
                raw += client.lrange(queue, 0, -1)
            raw += [json.dumps(json.loads(value)[0]) for value in client.hvals("unacked")]
        except (redis.RedisError, ValueError, IndexError):
            return None
        found = set()
        for text in raw:
            try:
                headers = json.loads(text).get("headers") or {}
            except ValueError:
                continue
            if headers.get("task") == "sync.connection_sync":
                found.update(int(n) for n in re.findall(r"\d+", str(headers.get("argsrepr"))))
        return found

    def stop(self) -> None:
        if not self.owned():
            return  # never shut down a server this bench did not start
        subprocess.run(
            ["redis-cli", "-p", str(self.port), "shutdown", "nosave"],
            capture_output=True, timeout=10,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not _port_free(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)


# --- /proc ----------------------------------------------------------------------------------------


def _parents() -> dict[int, int]:
    """pid → parent pid of every process (from /proc/<pid>/stat)."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        table[int(stat.parent.name)] = int(text.rsplit(")", 1)[1].split()[1])
    return table


def _memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB; (0, 0) when it is gone."""
    rss = hwm = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


def _descendants(pid: int, parents: dict[int, int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


# --- Workers --------------------------------------------------------------------------------------


class Worker:
    """One `celery -A fintrack worker -c 1` process (its own session: killable as a group)."""

    def __init__(self, number: int, env: dict):
        self.number = number
        self.name = f"chaos{number}"
        self.log_path = LOG_DIR / f"chaos_worker_{number}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(CELERY), "-A", "fintrack", "worker", "-c", "1", "-n", f"{self.name}@%h",
             "--loglevel", "INFO"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.killed = False  # by the bench (a fault or the memory guard), not on its own
        self.reported = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"worker {self.name} exited; see {self.log_path}")
            if b" ready." in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker {self.name} not ready within {seconds} s; see {self.log_path}")

    def pool_children(self) -> list[int]:
        return _descendants(self.pid, _parents())

    def kill(self) -> None:
        """kill -9 of the worker and its pool (the whole process group)."""
        self.killed = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)  # warm shutdown
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):  # pool children left
            os.killpg(self.pid, signal.SIGKILL)
        self.log.close()

    def tail(self, lines: int = 5) -> str:
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(line[-160:] for line in text[-lines:])


class Workers:
    """The worker processes: started, replaced, killed on purpose; their memory sampled."""

    def __init__(self, env: dict, count: int, report: chaos_sync.ChaosReport):
        self.env, self.count, self.report = env, count, report
        self.all: list[Worker] = []
        self.lock = threading.RLock()
        self.peak_kb = 0
        self.tree_peak_kb = 0

    def running(self) -> list[Worker]:
        return [worker for worker in self.all if worker.alive()]

    def start(self) -> Worker:
        with self.lock:
            worker = Worker(len(self.all) + 1, self.env)
            self.all.append(worker)
        return worker

    def start_all(self) -> None:
        started = [self.start() for _ in range(self.count)]
        for worker in started:
            worker.wait_ready()

    def replace_dead(self) -> None:
        """Workers that died on their own are a problem; either way the pool is made whole."""
        with self.lock:
            for worker in self.all:
                if not worker.alive() and not worker.killed and not worker.reported:
                    worker.reported = True
                    self.report.workers_died.append(
                        f"{worker.name} exited {worker.process.returncode}: {worker.tail()}"
                    )
            missing = self.count - len(self.running())
        for _ in range(missing):
            self.start()  # not waited for: it joins when ready

    def busy_choice(self, rng: random.Random) -> Worker | None:
        with self.lock:
            running = self.running()
        return rng.choice(running) if running else None

    def kill_child(self, rng: random.Random) -> str:
        worker = self.busy_choice(rng)
        children = worker.pool_children() if worker else []
        if not children:
            return self.kill_worker(rng)
        os.kill(children[0], signal.SIGKILL)
        return f"kill -9 of {worker.name}'s pool process {children[0]}"

    def kill_worker(self, rng: random.Random) -> str:
        worker = self.busy_choice(rng)
        if worker is None:
            return "no worker to kill"
        worker.kill()
        replacement = self.start()
        return f"kill -9 of {worker.name} (pid {worker.pid}); {replacement.name} started"

    def sample(self, guard_kb: int) -> None:
        """Memory of every live worker and its children; the guard kills a runaway one."""
        parents = _parents()
        with self.lock:
            running = self.running()
        for worker in running:
            tree = 0
            for pid in [worker.pid, *_descendants(worker.pid, parents)]:
                rss, hwm = _memory_kb(pid)
                tree += rss
                self.peak_kb = max(self.peak_kb, rss, hwm)
                if rss > guard_kb:
                    self.report.memory_guard_kills.append(
                        f"{worker.name} pid {pid}: {rss // 1024} MB"
                    )
                    worker.killed = True
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            self.tree_peak_kb = max(self.tree_peak_kb, tree)

    def stop_all(self) -> None:
        for worker in self.all:
            worker.stop()


# --- The driver -----------------------------------------------------------------------------------


class ProcessDriver:
    """Runs the chaos rounds on the workers: faults mid-sync, waiting, the monitor, the reaper."""

    def __init__(self, args, *, redis: PrivateRedis, workers: Workers, report, database: str):
        self.args, self.redis, self.workers, self.report = args, redis, workers, report
        self.database = database
        self.rng = random.Random(f"processes:{report.seed}")
        self.offset = self.rng.randrange(len(PROCESS_FAULTS))
        self.run_round: dict[int, int] = {}
        self.stuck: dict[int, str] = {}
        self.stop_event = threading.Event()
        self.reaper_sent = 0
        self.reaper_failed = 0
        self.threads: list[threading.Thread] = []
        self.period = args.reaper_period
        self.overdue_after = {
            "queued": args.queued_stale + args.reaper_period + args.stuck_slack,
            "running": args.heartbeat_timeout + args.reaper_period + args.stuck_slack,
        }
        self.events: list[str] = []
        self.recovery: dict[str, float] = {}  # fault → slowest time from it to its round's end

    # Threads: the beat-equivalent and the monitor.

    def start(self) -> None:
        from fintrack.celery import app

        app.loader.import_default_modules()
        self.reaper_registered = REAP_TASK in app.tasks and not self.args.no_reaper
        for target in (self._beat, self._monitor):
            thread = threading.Thread(target=target, daemon=True, name=target.__name__)
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=10)

    def _beat(self) -> None:
        """`sync.reap_stale_runs` every reaper period, as beat would send it."""
        from fintrack.celery import app

        if not self.reaper_registered:
            return
        while not self.stop_event.wait(self.period):
            try:
                app.send_task(REAP_TASK, retry=False)
                self.reaper_sent += 1
            except Exception:  # Redis down: beat's own send fails the same way
                self.reaper_failed += 1

    def _monitor(self) -> None:
        from django.db import connection

        guard_kb = self.args.memory_guard_mb * 1024
        last_runs_check = 0.0
        try:
            while not self.stop_event.wait(SAMPLE_SECONDS):
                self.workers.sample(guard_kb)
                if time.monotonic() - last_runs_check >= 1:
                    last_runs_check = time.monotonic()
                    self._check_overdue()
                    self.workers.replace_dead()
        finally:
            connection.close()

    def _check_overdue(self) -> None:
        from django.db import DatabaseError
        from django.utils import timezone

        from sync.models import ACTIVE_SYNC_STATUSES, SyncRun

        in_broker = self.redis.sync_messages()
        now = timezone.now()
        try:
            rows = list(
                SyncRun.objects.filter(status__in=ACTIVE_SYNC_STATUSES).values_list(
                    "pk", "status", "step", "created_at", "started_at", "heartbeat_at",
                    "next_retry_at", "attempts",
                )
            )  # fmt: skip
        except DatabaseError:
            return
        for pk, status, step, created, started, heartbeat, next_retry, attempts in rows:
            signs = [created, heartbeat] + ([next_retry] if status == "queued" else [started])
            age = (now - max(sign for sign in signs if sign is not None)).total_seconds()
            allowed = self.overdue_after.get(status)
            if status == "queued" and (in_broker is None or pk in in_broker):
                continue  # its message waits for a busy worker (or Redis is down right now)
            if allowed is not None and age > allowed and pk not in self.stuck:
                round_label = self.run_round.get(pk)
                where = f"round {round_label + 1}" if round_label is not None else "clean round"
                self.stuck[pk] = (
                    f"run {pk} ({where}): {status} at step {step}, attempts {attempts}, no sign "
                    f"of life for {age:.0f} s (allowed {allowed:.0f} s)"
                )

    # The chaos engine's hooks.

    def round_faults(self, round_number: int) -> set[str]:
        return {PROCESS_FAULTS[(round_number + self.offset) % len(PROCESS_FAULTS)]}

    def after_requests(self, round_number: int, run_ids: list[int]) -> None:
        for pk in run_ids:
            self.run_round[pk] = round_number
        (kind,) = self.round_faults(round_number)
        if not self._wait_running(run_ids, seconds=30):
            self.events.append(f"round {round_number + 1}: no run went running within 30 s")
        time.sleep(self.rng.uniform(0.2, 1.5))
        injected = time.monotonic()
        what = self._inject(kind)
        self.report.process_faults[kind] += 1
        left = self._wait_finished(run_ids, seconds=self.args.round_timeout)
        took = time.monotonic() - injected
        if not left:
            self.recovery[kind] = max(self.recovery.get(kind, 0.0), took)
        self.events.append(
            f"round {round_number + 1}: {kind}: {what}; "
            + (f"its runs all finished {took:.0f} s later" if not left
               else f"runs {left} still active after {took:.0f} s")
        )  # fmt: skip

    def faults_stopped(self, run_ids: list[int]) -> None:
        deadline = self.args.heartbeat_timeout + self.args.reaper_period + self.args.settle_margin
        self.report.settle_deadline = deadline
        started = time.monotonic()
        left = self._wait_finished(run_ids, seconds=deadline)
        if left:
            for pk, text in self._describe(left).items():
                self.stuck.setdefault(
                    pk, f"{text}: still active {deadline:.0f} s after faults stopped"
                )
            self._wait_finished(left, seconds=self.args.round_timeout)
        else:
            self.report.settle_seconds = time.monotonic() - started

    def settle(self, run_ids: list[int]) -> None:
        left = self._wait_finished(run_ids, seconds=self.args.round_timeout)
        for pk, text in self._describe(left).items():
            self.stuck.setdefault(pk, f"{text}: clean-round run still active")

    # Faults.

    def _inject(self, kind: str) -> str:
        if kind == "kill_child":
            return self.workers.kill_child(self.rng)
        if kind == "kill_worker":
            return self.workers.kill_worker(self.rng)
        if kind == "redis_restart":
            self.redis.stop()
            down = self.rng.uniform(1, 3)
            time.sleep(down)
            self.redis.start()
            return f"Redis down {down:.1f} s"
        if kind == "db_terminate":
            terminated = 0
            for _ in range(3):
                terminated += self._terminate_backends()
                time.sleep(0.4)
            return f"{terminated} worker backends terminated"
        raise ValueError(kind)

    def _terminate_backends(self) -> int:
        """pg_terminate_backend of the workers' backends of this database (no other)."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = %s AND application_name = %s AND pid <> pg_backend_pid()",
                [self.database, WORKER_APP_NAME],
            )
            return cursor.fetchone()[0]

    # Waiting.

    def _wait_running(self, run_ids: list[int], *, seconds: float) -> bool:
        from sync.models import SyncRun, SyncStatus

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if SyncRun.objects.filter(pk__in=run_ids, status=SyncStatus.RUNNING).exists():
                return True
            time.sleep(0.1)
        return False

    def _wait_finished(self, run_ids: list[int], *, seconds: float) -> list[int]:
        """Wait until none of the runs is active (or the time is up); returns those still active."""
        from sync.models import ACTIVE_SYNC_STATUSES, SyncRun

        deadline = time.monotonic() + seconds
        while True:
            left = list(
                SyncRun.objects.filter(pk__in=run_ids, status__in=ACTIVE_SYNC_STATUSES).values_list(
                    "pk", flat=True
                )
            )
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(0.5)

    def _describe(self, run_ids: list[int]) -> dict[int, str]:
        from sync.models import SyncRun

        return {
            run.pk: f"run {run.pk}: {run.status} at step {run.step}, attempts {run.attempts}"
            for run in SyncRun.objects.filter(pk__in=run_ids)
        }

    # The end.

    def finish(self) -> None:
        """Figures into the report: stuck runs, memory, the reaper, worker-log failures."""
        report = self.report
        report.stuck = list(self.stuck.values())
        report.recovery_seconds = {kind: round(took, 1) for kind, took in self.recovery.items()}
        report.worker_peak_mb = round(self.workers.peak_kb / 1024, 1)
        report.worker_tree_peak_mb = round(self.workers.tree_peak_kb / 1024, 1)
        if self.reaper_registered:
            report.reaper = (
                f"{REAP_TASK} sent {self.reaper_sent} times (every {self.period} s), "
                f"{self.reaper_failed} sends failed (Redis down)"
            )
        elif self.args.no_reaper:
            report.reaper = "not run (--no-reaper: a control run)"
        else:
            report.reaper = f"{REAP_TASK} is not registered: no reaper ran (skipped)"
            report.notes.append(f"{REAP_TASK} not registered in sync/tasks.py: reaper skipped")
        integrity = Counter()
        for worker in self.workers.all:
            text = worker.log_path.read_text(errors="replace")
            for match in re.finditer(r"IntegrityError: ([^\n]{0,160})", text):
                integrity[match.group(1).strip()] += 1
            if "unregistered task" in text and REAP_TASK in text:
                report.notes.append(f"{worker.name}: received {REAP_TASK} unregistered")
        for message, count in integrity.items():
            report.race_failures.append(f"worker log: {count} x IntegrityError: {message}")
        report.notes += self.events


# --- The script -----------------------------------------------------------------------------------


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=None, help="default: random, printed")
    parser.add_argument("--rounds", type=int, default=None, help="default 20 (--ci: 5)")
    parser.add_argument("--clients", type=int, default=None, help="default 4 (--ci: 2)")
    parser.add_argument("--ci", action="store_true", help="the CI size: 2 clients, 5 rounds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--hang-seconds", type=float, default=1.0)
    parser.add_argument("--classic", action="store_true", help="no transaction-page faults")
    parser.add_argument("--oversized-items", type=int, default=chaos_sync.OVERSIZED_ITEMS)
    parser.add_argument("--redis-port", type=int, default=6391, help="a free one if taken")
    parser.add_argument("--reaper-period", type=int, default=5)
    parser.add_argument("--heartbeat-timeout", type=int, default=15)
    parser.add_argument("--queued-stale", type=int, default=10)
    parser.add_argument("--stuck-slack", type=float, default=5.0)
    parser.add_argument("--settle-margin", type=float, default=30.0)
    parser.add_argument("--round-timeout", type=float, default=180.0)
    parser.add_argument(
        "--no-reaper", action="store_true", help="a control: no reaper, to see stuck runs caught"
    )
    parser.add_argument("--memory-target-mb", type=float, default=chaos_sync.MEMORY_TARGET_MB)
    parser.add_argument(
        "--memory-guard-mb", type=int, default=2048, help="kill -9 a worker process above this"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "CHAOS_PROCESSES_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/fintrack_chaos_processes",
        ),
    )
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (5 if args.ci else 20)
    args.clients = min(args.clients or (2 if args.ci else 4), len(chaos_sync.TIED_CLIENTS_FIRST))
    args.embedded = False
    return args


def _worker_environment(env: dict, args, redis: PrivateRedis) -> dict:
    return {
        **os.environ,
        **env,
        "PGAPPNAME": WORKER_APP_NAME,
        "LOG_LEVEL": "INFO",
        # Celery's own limits, short enough that a run reading forever ends within a round.
        "CELERY_TASK_SOFT_TIME_LIMIT": "120",
        "CELERY_TASK_TIME_LIMIT": "150",
    }


def main(argv=None) -> int:
    wall_started = time.perf_counter()
    args = _arguments(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    port = chaos_sync._free_port()
    redis_port = args.redis_port if _port_free(args.redis_port) else chaos_sync._free_port()
    redis = PrivateRedis(redis_port)
    env = chaos_sync._environment(args, port)
    env.update(
        {
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "CELERY_BROKER_URL": redis.url(0),
            "REDIS_CACHE_URL": redis.url(1),
            "DATABASE_CONN_MAX_AGE": "60",
            "SYNC_REAPER_PERIOD_SECONDS": str(args.reaper_period),
            "SYNC_HEARTBEAT_TIMEOUT_SECONDS": str(args.heartbeat_timeout),
            "SYNC_QUEUED_STALE_SECONDS": str(args.queued_stale),
            # Bank outages are retried by the task: quickly here, so rounds stay short.
            "SYNC_RETRY_BASE_SECONDS": "0.5",
            "SYNC_RETRY_MAX_SECONDS": "3",
        }
    )
    os.environ.update(env)
    os.environ["PGAPPNAME"] = BENCH_APP_NAME
    chaos_sync._fresh_database(args)

    import django

    django.setup()
    from django.core.management import call_command

    from sandbox import clock

    database = args.database_url.rsplit("/", 1)[1]
    print(
        f"chaos processes: seed {seed} (replay with --seed {seed}); {args.workers} workers, "
        f"Redis on {redis_port}, database {database}, reaper every {args.reaper_period} s "
        f"(heartbeat timeout {args.heartbeat_timeout} s, queued stale {args.queued_stale} s)",
        flush=True,
    )
    call_command("migrate", verbosity=0, interactive=False)
    report = chaos_sync.ChaosReport(seed=seed, mode=f"{args.workers} Celery worker processes")
    report.memory_target_mb = args.memory_target_mb
    redis.start()
    sandbox = chaos_sync._start_sandbox(port, {**env, "PGAPPNAME": SANDBOX_APP_NAME})
    workers = Workers(_worker_environment(env, args, redis), args.workers, report)
    driver = ProcessDriver(args, redis=redis, workers=workers, report=report, database=database)
    try:
        workers.start_all()
        driver.start()
        clock.reset(at=datetime.now().astimezone())
        users = chaos_sync.chaos_prepare(
            clients=args.clients, client_numbers=chaos_sync.TIED_CLIENTS_FIRST
        )
        chaos_sync.chaos_run(
            users=users, rounds=args.rounds, seed=seed, hang_seconds=args.hang_seconds,
            verbose=True, page_faults=not args.classic, oversized_items=args.oversized_items,
            driver=driver, report=report,
        )  # fmt: skip
    finally:
        driver.stop()
        workers.stop_all()
        sandbox.terminate()
        sandbox.wait(timeout=15)
        redis.stop()
    driver.finish()
    for line in report.lines():
        print(line)
    print(f"  wall time with set-up (database, workers, sandbox): "
          f"{time.perf_counter() - wall_started:.0f} s")  # fmt: skip
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "chaos_processes.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return 0 if report.problems() == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
