"""`cp .env.example .env && make run`, as people do, then the README's first tour over HTTP.

The whole embedded default in real processes: `make run` (migrate, bootstrap, then web, one Celery
worker and beat on the file-system broker, SQLite and the shared SQLite cache), with every
variable `.env.example` sets active. It proves that the example is safe to copy (embedded mode,
no host `db`), that a recomputation asked by the web process is finished by the worker within
seconds (the two share the cache: `recomputing` does not stick), and that connecting a bank runs
through the worker to a ready dashboard.
"""

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    not (ROOT / ".venv" / "bin" / "celery").exists(), reason="needs the project's virtualenv"
)
# Variables of the test run that must not leak into the processes under test.
_OURS = re.compile(r"^(FINTRACK_|DJANGO_|DATABASE_|CELERY_|REDIS_|BANK_|SANDBOX_|PYTEST)")


def _env_example() -> dict[str, str]:
    """The variables `.env.example` sets (commented lines are not set), as .env would."""
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2).strip()
    return values


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(check, *, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except requests.RequestException as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout:.0f} s (last: {last!r})")


def test_env_example_is_safe_to_copy():
    values = _env_example()

    assert values.get("FINTRACK_ENV", "embedded") == "embedded"
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_CACHE_URL", "VBANK_BASE_URL"):
        assert name not in values, f"{name} is set: copying .env.example would leave embedded mode"
    assert not any("@db:" in value or "redis:6379" in value for value in values.values())
    production = (ROOT / ".env.production.example").read_text()
    assert re.search(r"^FINTRACK_ENV=production$", production, flags=re.MULTILINE)


@pytest.fixture
def embedded_server(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not _OURS.match(k)}
    env.update(_env_example())
    env.update(
        {
            "FINTRACK_VAR_DIR": str(tmp_path / "var"),
            "PORT": str(port),
            "FINTRACK_SITE_URL": f"http://127.0.0.1:{port}",
        }
    )
    log = (tmp_path / "make-run.log").open("w")
    process = subprocess.Popen(
        ["make", "run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the whole group (make, web, worker, beat) is stopped below
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(
            lambda: requests.get(f"{base}/api/health", timeout=2).status_code == 200,
            timeout=120,
            what="the web process answering /api/health",
        )
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
        # What the processes said, for a failure's report.
        print((tmp_path / "make-run.log").read_text()[-4000:])
        worker_log = tmp_path / "var" / "log" / "worker.log"
        if worker_log.exists():
            print(worker_log.read_text()[-4000:])


def test_make_run_from_a_copied_env_example_serves_the_tour(embedded_server):
    base = embedded_server
    credentials = {"email": "tour@example.com", "password": "a-long-tour-password-1"}
    assert requests.post(f"{base}/api/auth/register", json=credentials, timeout=10).ok
    login = {"login": credentials["email"], "password": credentials["password"]}
    token = requests.post(f"{base}/api/auth/login", json=login, timeout=10).json()["access"]
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"

    # Recompute: asked by the web process, done by the worker, seen by the web process.
    asked = http.post(f"{base}/api/analytics/recompute", timeout=10)
    assert asked.status_code == 202
    assert http.get(f"{base}/api/dashboard", timeout=10).json()["recomputing"] is True
    started = time.monotonic()
    _wait_for(
        lambda: http.get(f"{base}/api/dashboard", timeout=10).json()["recomputing"] is False,
        timeout=30,
        what="the worker finishing the recomputation",
    )
    assert time.monotonic() - started < 30

    # The tour: connect a bank (the demo client proposed), its first sync on the worker.
    connect = http.post(f"{base}/api/banks/vbank/connect", json={}, timeout=30)
    assert connect.status_code in (200, 201, 202), connect.text
    _wait_for(
        lambda: http.get(f"{base}/api/banks/vbank/status", timeout=10).json()["status"] == "ready",
        timeout=240,
        what="vbank ready after its first sync",
        interval=1,
    )
    dashboard = _wait_for(
        lambda: (
            (body := http.get(f"{base}/api/dashboard", timeout=10).json())["state"] == "ready"
            and not body["recomputing"]
            and body
        ),
        timeout=60,
        what="a ready dashboard",
    )
    assert dashboard["accounts"], dashboard


def test_the_production_example_lists_the_same_variables():
    def names(path: Path) -> set[str]:
        text = path.read_text()
        return set(re.findall(r"^(?:#\s*)?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))

    assert names(ROOT / ".env.production.example") == names(ROOT / ".env.example")
