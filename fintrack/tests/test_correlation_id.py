"""The correlation id (issue 21) in every log line and every raw log: a web request runs under the
client's valid `X-Correlation-Id` or a fresh uuid, echoed in the response; its bank calls' raw logs
and audit events carry it; a Celery task runs under its sender's id, a sync task under its run's.
"""

import io
import logging
import uuid
from contextlib import contextmanager

import pytest
import responses

from audit.models import AuditEvent, RawApiLog
from audit.services import AuditAction
from consents.models import Consent, ConsentKind, ConsentStatus
from fintrack.core.correlation import correlation_scope, get_correlation_id
from fintrack.core.logging import LOG_FORMAT, CorrelationIdFilter, task_publish_stamp
from sync.tests import fakebank as fb


@contextmanager
def log_lines(logger_name: str = ""):
    """Lines logged meanwhile, formatted as settings.LOGGING formats them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(CorrelationIdFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger = logging.getLogger(logger_name)
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    lines: list[str] = []
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
        lines.extend(stream.getvalue().splitlines())


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def test_a_valid_client_id_is_used_and_echoed(api_client, db):
    response = api_client.get("/api/health", HTTP_X_CORRELATION_ID="support-ticket-4711")

    assert response["X-Correlation-Id"] == "support-ticket-4711"


@pytest.mark.parametrize(
    "sent",
    [None, "", "has spaces", "x" * 65, 'quote"d', "-starts-with-dash", "new\nline", "ünïcode"],
)
def test_a_missing_or_implausible_id_is_replaced_by_a_fresh_uuid(api_client, db, sent):
    headers = {} if sent is None else {"HTTP_X_CORRELATION_ID": sent}

    first = api_client.get("/api/health", **headers)["X-Correlation-Id"]
    second = api_client.get("/api/health", **headers)["X-Correlation-Id"]

    assert _is_uuid(first) and _is_uuid(second)
    assert first != second


def test_log_lines_written_during_a_request_carry_its_id(api_client, db):
    with log_lines() as lines:
        response = api_client.get("/api/health?q=%00", HTTP_X_CORRELATION_ID="req-nul-1")

    assert response.status_code == 400
    refused = [line for line in lines if "refused a NUL byte" in line]
    assert refused and all("[req-nul-1]" in line for line in refused)
    # Django's own line for the 4xx, written after the middleware returned, carries it too.
    answered = [line for line in lines if "django.request" in line]
    assert answered and all("[req-nul-1]" in line for line in answered)


def test_the_configured_console_handler_prints_the_id():
    from django.conf import settings

    console = settings.LOGGING["handlers"]["console"]
    assert "correlation_id" in console["filters"]
    assert "%(correlation_id)s" in settings.LOGGING["formatters"][console["formatter"]]["format"]
    assert settings.MIDDLEWARE[0] == "fintrack.core.logging.CorrelationIdMiddleware"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "outside any scope", None, None)
    assert CorrelationIdFilter().filter(record) and record.correlation_id == "-"


def test_raw_logs_and_audit_of_bank_calls_in_a_request_carry_its_id(auth_client, user, settings):
    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 0
    consent = Consent.objects.create(
        user=user,
        bank_code="vbank",
        kind=ConsentKind.ACCOUNTS,
        bank_consent_id="consent-77",
        status=ConsentStatus.AUTHORIZED,
    )

    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add(responses.DELETE, f"{fb.BASE}/account-consents/consent-77", status=204)
        response = auth_client.post(
            f"/api/consents/{consent.pk}/revoke", HTTP_X_CORRELATION_ID="revoke-req-9"
        )

    assert response.status_code == 200, response.content
    assert response["X-Correlation-Id"] == "revoke-req-9"
    raw = list(RawApiLog.objects.values_list("endpoint", "correlation_id"))
    assert raw and {correlation for _endpoint, correlation in raw} == {"revoke-req-9"}
    revoked = AuditEvent.objects.get(action=AuditAction.CONSENT_REVOKED)
    assert revoked.correlation_id == "revoke-req-9"


def test_the_request_id_does_not_leak_into_the_next_request(api_client, db):
    api_client.get("/api/health", HTTP_X_CORRELATION_ID="first-request")

    assert get_correlation_id() is None
    assert api_client.get("/api/health")["X-Correlation-Id"] != "first-request"


# --- Celery ---------------------------------------------------------------------------------------


def test_a_task_message_carries_the_senders_id():
    headers: dict = {}
    with correlation_scope("sender-42"):
        task_publish_stamp(headers=headers)
    assert headers == {"correlation_id": "sender-42"}

    untouched: dict = {}
    task_publish_stamp(headers=untouched)  # outside any scope: nothing to carry
    assert untouched == {}


def test_a_worker_runs_a_task_under_the_id_its_message_carries():
    from celery import shared_task

    @shared_task(name="tests.correlation_probe")
    def probe():
        logging.getLogger("tests.correlation").info("inside the task")
        return get_correlation_id()

    with log_lines("tests.correlation") as lines:
        # As a worker does: the message's headers become the request, with no caller's scope.
        carried = probe.apply(headers={"correlation_id": "from-the-sender"}).get()
        fresh = probe.apply().get()

    assert carried == "from-the-sender"
    assert _is_uuid(fresh)
    assert len(lines) == 2
    assert "[from-the-sender] inside the task" in lines[0]
    assert f"[{fresh}] inside the task" in lines[1]
    assert get_correlation_id() is None  # the scope ended with the task


def test_a_sync_task_logs_under_its_runs_id(db, user, settings, monkeypatch):
    from banking.models import BankConnection
    from sync import tasks
    from sync.models import SyncRun

    connection = BankConnection.objects.create(user=user, bank_code="vbank", client_id="team260-1")
    run = SyncRun.objects.create(connection=connection, user_id=user.pk)
    seen = []

    def fake_execute(**kwargs):
        logging.getLogger("sync.tasks").info("running %s", kwargs["sync_run_id"])
        seen.append(get_correlation_id())

    monkeypatch.setattr(tasks, "sync_run_execute", fake_execute)

    with log_lines("sync.tasks") as lines, correlation_scope("the-web-request"):
        tasks.connection_sync.apply(args=[run.pk])

    assert seen == [str(run.correlation_id)]
    assert any(f"[{run.correlation_id}] running {run.pk}" in line for line in lines)
