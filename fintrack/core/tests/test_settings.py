"""Production settings refuse to start without what they need, and pass check --deploy with it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[3]

PRODUCTION_ENV = {
    "FINTRACK_ENV": "production",
    "DJANGO_SECRET_KEY": "x" * 64 + "-a-long-random-production-secret-value",
    "DJANGO_ALLOWED_HOSTS": "fintrack.example.com",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/fintrack",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "BANK_TEAM_SECRET": "bank-secret-from-the-organisers",
    "FIELD_ENCRYPTION_KEY": "another-long-random-key-for-bank-tokens",
}


def run_django(env_overrides, *args):
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV}
    env.pop("FINTRACK_TESTING", None)
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("missing", sorted(set(PRODUCTION_ENV) - {"FINTRACK_ENV"}))
def test_production_refuses_to_start_without(missing):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}

    result = run_django(env, "check")

    assert result.returncode != 0
    assert f"{missing} is required" in result.stderr


def test_production_refuses_sqlite_database():
    result = run_django({**PRODUCTION_ENV, "DATABASE_URL": "sqlite:///tmp/x.sqlite3"}, "check")

    assert result.returncode != 0
    assert "PostgreSQL" in result.stderr


def test_production_refuses_a_non_redis_broker():
    result = run_django({**PRODUCTION_ENV, "CELERY_BROKER_URL": "filesystem://"}, "check")

    assert result.returncode != 0
    assert "Redis" in result.stderr


def test_production_settings_pass_check_deploy():
    result = run_django(PRODUCTION_ENV, "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
