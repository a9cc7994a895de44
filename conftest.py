"""Test-wide setup: test settings flags and fixtures every app's tests share."""

# FINTRACK_TESTING and CELERY_TASK_ALWAYS_EAGER are set by pytest-env (pyproject.toml), before
# pytest-django loads the settings; setting them here would be too late.
import os

import pytest


@pytest.fixture(autouse=True)
def _clear_cache():
    """Throttle counters, cached lookups, the process's bank tokens, and the banks' circuits and
    rate-limit schedules (shared and process-local: a test that took Redis away leaves the local
    fallback behind): each test starts clean."""
    from django.core.cache import cache

    from banking.clients.circuit import circuits_reset
    from banking.clients.ratelimit import rate_limits_reset
    from banking.services.tokens import bank_token_cache_clear
    from fintrack.core.throttling import fallback_reset

    def reset():
        cache.clear()
        bank_token_cache_clear()
        fallback_reset()
        circuits_reset()
        rate_limits_reset()

    reset()
    yield
    reset()


@pytest.fixture(autouse=True)
def _celery_eager():
    """Tasks run inline in tests (pytest-env sets it; this undoes any test that leaked a change).

    A test that needs the broker asks for it explicitly (sync/tests/test_celery_worker.py).
    """
    from fintrack.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def make_user(db):
    """Create a user as registration does (no bank client: that is the connection's). With
    `client_id`, the user is that demo client at every configured bank (banking.tests.factories
    .client_id_give), as a connect without a client id makes them."""
    from banking.tests.factories import client_id_give
    from users.services import user_create

    counter = {"n": 0}

    def _make(email=None, phone=None, password="A-strong-pass-2026", client_id=None, **extra):
        counter["n"] += 1
        if not email and not phone:
            email = f"user{counter['n']}@example.com"
        user = user_create(email=email, phone=phone, password=password, **extra)
        if client_id is not None:
            client_id_give(user=user, client_id=client_id)
        return user

    return _make


@pytest.fixture
def user(make_user):
    return make_user(email="anna@example.com")


@pytest.fixture
def auth_client(api_client, user):
    """An API client authenticated as `user` with a real JWT access token."""
    from users.services import token_pair_for

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user)['access']}")
    api_client.user = user
    return api_client


@pytest.fixture
def sandbox_banks(live_server, settings):
    """Every bank served by the sandbox on live_server over real HTTP, its clock frozen at now.

    Frozen at the real now (not a past date) so consent expiries the sandbox computes from its
    clock stay in the future for FinTrack. Transactional tests flush tables, migration-seeded
    categories included: they are seeded again and their cached ids forgotten.
    """
    from django.utils import timezone

    from banking.categories import categories_seed
    from banking.categorization import category_cache_clear
    from sandbox import clock

    categories_seed()
    category_cache_clear()
    settings.BANKS = {
        code: {**config, "base_url": f"{live_server.url}/sandbox/{code}"}
        for code, config in settings.BANKS.items()
    }
    settings.BANK_RETRY_BACKOFF_SECONDS = 0.001
    settings.BANK_RETRY_MAX_SLEEP_SECONDS = 0.01
    clock.reset(at=timezone.now())
    return settings.BANKS


@pytest.fixture
def bank_client_tokens(monkeypatch):
    """Every client token the banks issue at /auth/login (demo consent signing), as issued."""
    from banking.clients.base import BankClient

    issued: list[str] = []
    original = BankClient._client_login

    def recording_login(self, *, client_id):
        token = original(self, client_id=client_id)
        issued.append(token)
        return token

    monkeypatch.setattr(BankClient, "_client_login", recording_login)
    return issued


# --- Browser tests (marker `browser`): headless Chromium from Debian, driven by Playwright ------

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def screenshots_dir():
    """Where browser tests save their screenshots (SCREENSHOTS_DIR, default var/screenshots)."""
    from pathlib import Path

    path = Path(os.environ.get("SCREENSHOTS_DIR") or Path(__file__).parent / "var" / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium per browser-test module; skipped only where none is installed (CI
    installs Debian's chromium, so there it always runs).

    Playwright's sync API keeps an event loop running in the test thread while it is started,
    and Django refuses ORM calls from a thread with a running loop. The ORM calls of these tests
    are plain synchronous ones (the live server answers from its own thread), so the check is
    lifted, and only while the module's browser runs: the loop stops when it closes, so the tests
    after it (and `check --deploy`, which rejects the variable) see neither."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"no Chromium at {CHROMIUM}: .ci/run installs Debian's chromium")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def staff_page(chromium, live_server, make_user):
    """A 1400×900 browser page logged into the Django admin as a staff superuser."""
    admin = make_user(email="judge@example.com", password="Judge-pass-2026", is_staff=True,
                      is_superuser=True)  # fmt: skip
    context = chromium.new_context(viewport={"width": 1400, "height": 900}, locale="ru-RU")
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", admin.email)
    page.fill("#id_password", "Judge-pass-2026")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    page.base_url = live_server.url
    yield page
    context.close()


@pytest.fixture
def redis_server():
    """A throwaway redis-server on a free port (the shared one is never restarted); the test
    skips where redis-server is not installed."""
    from fintrack.tests.celery_workers import REDIS_SERVER, RedisServer, free_port

    if REDIS_SERVER is None:
        pytest.skip("needs redis-server on PATH (apt-get install redis-server)")
    server = RedisServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_broker(redis_server):
    """This process sends its tasks to the throwaway Redis (not inline) in the test."""
    from fintrack.tests.celery_workers import broker_at, tasks_through_the_broker

    with broker_at(redis_server.url), tasks_through_the_broker():
        yield redis_server
