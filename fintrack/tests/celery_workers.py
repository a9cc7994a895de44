"""Real Celery worker processes for tests (`celery -A fintrack worker` as a subprocess),
sending this process's tasks through a broker of the test's choosing, and a throwaway
redis-server to be that broker (the `redis_server` and `redis_broker` fixtures, conftest.py).

A worker started here is the production one (prefork pool, the real broker, its own Django
setup): tests of what only processes show (two syncs of one user finishing in two processes, a
worker outliving a broker restart) use it. The worker reads the test's database (pytest-django's
test database, so only transactional tests are seen by it) and gets the test process's secrets,
so it decrypts the tokens the test stored and the sandbox on the live server accepts its logins.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
READY_SECONDS = 60
REDIS_SERVER = shutil.which("redis-server")


@contextmanager
def tasks_through_the_broker() -> Iterator[None]:
    """Tasks sent in the block go to the broker, not inline (the tests' default, eager, after).

    Both keys are set: Celery 5.6 reads the Django-namespaced CELERY_TASK_ALWAYS_EAGER (from
    settings, pytest-env sets it) before a `task_always_eager` changed on the app.
    """
    from fintrack.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = app.conf.CELERY_TASK_ALWAYS_EAGER = False
    try:
        yield
    finally:
        app.conf.task_always_eager = app.conf.CELERY_TASK_ALWAYS_EAGER = saved


@contextmanager
def broker_at(url: str) -> Iterator[None]:
    """This process sends its tasks to the broker at `url` in the block (new connection pools,
    closed and forgotten after); with `tasks_through_the_broker` they really go there."""
    from fintrack.celery import app

    saved_environment = os.environ.get("CELERY_BROKER_URL")
    saved = app.conf.broker_url, app._pool, app.amqp._producer_pool
    # Celery reads CELERY_BROKER_URL from the environment before its configuration.
    os.environ["CELERY_BROKER_URL"] = app.conf.broker_url = url
    app._pool = app.amqp._producer_pool = None
    try:
        yield
    finally:
        _forget_pools(app)
        app.conf.broker_url, app._pool, app.amqp._producer_pool = saved
        if saved_environment is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = saved_environment


def _forget_pools(app) -> None:
    """Close the block's connection and producer pools and drop them from kombu's process-wide
    registries, which key them by the broker's address: a later block at the same address (a
    released port handed out again) would otherwise be given the closed pool ("Acquire on
    closed pool"), and its sends would fail for a reason no outage explains."""
    from kombu import pools

    for registry, pool in (
        (pools.producers, app.amqp._producer_pool),
        (pools.connections, app._pool),
    ):
        if pool is None:
            continue
        pool.force_close_all()
        for key in [key for key, value in dict.items(registry) if value is pool]:
            dict.__delitem__(registry, key)


def database_url_of_this_test() -> str:
    """A DATABASE_URL naming the database this test runs on (pytest-django's test database)."""
    config = connection.settings_dict
    if config["ENGINE"] != "django.db.backends.postgresql":
        raise RuntimeError("worker processes need a database of their own: PostgreSQL")
    user = quote(config.get("USER") or "", safe="")
    password = quote(config.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = config.get("HOST") or "127.0.0.1"
    port = config.get("PORT") or 5432
    return f"postgres://{credentials}{host}:{port}/{config['NAME']}"


def worker_environment(*, broker_url: str, **extra: str) -> dict[str, str]:
    """The environment of a worker process: the test's database, secrets and broker."""
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "fintrack.settings",
        "DATABASE_URL": database_url_of_this_test(),
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "BANK_TEAM_SECRET": settings.BANK_TEAM_SECRET,
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "DJANGO_DEBUG": "false",  # DEBUG keeps every query in memory
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    if settings.FIELD_ENCRYPTION_KEY:
        environment["FIELD_ENCRYPTION_KEY"] = settings.FIELD_ENCRYPTION_KEY
    environment.update(extra)
    return environment


class WorkerProcess:
    """A running `celery worker` and its log."""

    def __init__(self, process: subprocess.Popen, log_path: Path):
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_for_log(self, text: str, *, seconds: float, after: int = 0) -> bool:
        """Wait until `text` appears in the log after offset `after`; False on timeout."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if text in self.log()[after:]:
                return True
            if not self.alive():
                return False
            time.sleep(0.1)
        return False


@contextmanager
def celery_worker(
    *,
    name: str,
    environment: dict[str, str],
    concurrency: int = 2,
    extra_args: tuple[str, ...] = (),
) -> Iterator[WorkerProcess]:
    """A prefork worker named `name`, ready to consume; warm-stopped (then killed) at exit."""
    log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in finally)
        prefix=f"celery-{name}-", suffix=".log", delete=False
    )
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "fintrack",
        "worker",
        "--pool=prefork",
        f"--concurrency={concurrency}",
        f"--hostname={name}@%h",
        "--loglevel=INFO",
        *extra_args,
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=environment,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its pool processes in its own group, stopped with it
    )
    worker = WorkerProcess(process, Path(log_file.name))
    try:
        if not worker.wait_for_log(" ready.", seconds=READY_SECONDS):
            raise RuntimeError(f"worker {name} did not start:\n{worker.log()[-4000:]}")
        yield worker
    finally:
        _stop(process)
        log_file.close()
        if not os.environ.get("FINTRACK_KEEP_WORKER_LOGS"):  # set it to read them after a run
            Path(log_file.name).unlink(missing_ok=True)


def _stop(process: subprocess.Popen) -> None:
    """Warm shutdown (SIGTERM), then SIGKILL to the worker's process group after 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
    with suppress(ProcessLookupError):  # the group is the worker's own (start_new_session)
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A throwaway redis-server on `port` (no persistence), stopped and started at will."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: redis-server shuts down (nothing to save)
            self.process.wait(timeout=10)
        self.process = None

    def restart(self, *, down_seconds: float = 2.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()
