"""Honest connection states: each status carries a machine-readable reason and a human message,
a retry its time, and a move to another status never keeps the old status's explanation."""

from datetime import UTC, datetime, timedelta

import pytest

from audit.models import AuditEvent
from banking.exceptions import InvalidConnectionTransition
from banking.models import BankConnection, ConnectionStatus
from banking.selectors.connections import connection_status_message
from banking.services.connections import (
    PARTIAL_SYNC_REASON,
    connection_get_or_create,
    connection_mark_synced,
    connection_transition,
)

S = ConnectionStatus
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _banks(settings):
    settings.BANKS = {"vbank": {"name": "Virtual Bank", "base_url": "https://vbank.test"}}


def _stored(connection) -> tuple:
    row = BankConnection.objects.get(pk=connection.pk)
    return row.status, row.status_reason, row.last_error, row.next_retry_at


def test_a_transition_stores_its_reason_and_message_and_audits_both(user):
    connection = BankConnection.objects.create(user=user, bank_code="vbank", status=S.READY)

    connection_transition(
        connection=connection,
        to_status=S.CONSENT_REQUIRED,
        error="FinTrack's access to Virtual Bank was revoked at the bank.",
        reason="consent_revoked",
    )

    assert _stored(connection) == (
        S.CONSENT_REQUIRED,
        "consent_revoked",
        "FinTrack's access to Virtual Bank was revoked at the bank.",
        None,
    )
    assert (connection.status, connection.status_reason) == (S.CONSENT_REQUIRED, "consent_revoked")
    event = AuditEvent.objects.get(action="connection.status_changed")
    assert event.details == {
        "from": S.READY,
        "to": S.CONSENT_REQUIRED,
        "error": "FinTrack's access to Virtual Bank was revoked at the bank.",
        "reason": "consent_revoked",
    }


def test_moving_on_without_a_message_clears_the_old_status_explanation(user):
    connection = BankConnection.objects.create(
        user=user,
        bank_code="vbank",
        status=S.ERROR,
        status_reason="bank_rejected",
        last_error="Virtual Bank: client_id required",
    )

    connection_transition(connection=connection, to_status=S.CONSENT_PENDING)

    assert _stored(connection) == (S.CONSENT_PENDING, "", "", None)


def test_retrying_keeps_its_next_retry_time_until_the_run_resumes(user):
    connection = BankConnection.objects.create(
        user=user, bank_code="vbank", status=S.SYNC_IN_PROGRESS
    )
    when = datetime(2026, 12, 1, 12, 0, 30, tzinfo=UTC)

    connection_transition(
        connection=connection,
        to_status=S.RETRYING,
        error="Virtual Bank is not answering (HTTP 503).",
        reason="bank_unavailable",
        next_retry_at=when,
    )
    assert _stored(connection) == (
        S.RETRYING,
        "bank_unavailable",
        "Virtual Bank is not answering (HTTP 503).",
        when,
    )
    later = when + timedelta(seconds=60)
    connection_transition(
        connection=connection,
        to_status=S.RETRYING,
        error="Virtual Bank is not answering (HTTP 502).",
        reason="bank_unavailable",
        next_retry_at=later,
    )
    assert _stored(connection)[3] == later

    connection_transition(connection=connection, to_status=S.SYNC_IN_PROGRESS)
    assert _stored(connection) == (S.SYNC_IN_PROGRESS, "", "", None)
    connection_transition(connection=connection, to_status=S.READY)
    assert _stored(connection) == (S.READY, "", "", None)


def test_next_retry_at_is_never_kept_outside_retrying(user):
    connection = BankConnection.objects.create(
        user=user, bank_code="vbank", status=S.SYNC_IN_PROGRESS
    )

    connection_transition(
        connection=connection,
        to_status=S.ERROR,
        error="boom",
        reason="bank_rejected",
        next_retry_at=datetime(2026, 12, 1, tzinfo=UTC),
    )

    assert _stored(connection) == (S.ERROR, "bank_rejected", "boom", None)


def test_a_refused_transition_changes_neither_reason_nor_message(user):
    connection = BankConnection.objects.create(
        user=user, bank_code="vbank", status=S.NOT_CONNECTED, status_reason="", last_error=""
    )

    with pytest.raises(InvalidConnectionTransition):
        connection_transition(
            connection=connection, to_status=S.RETRYING, error="x", reason="bank_unavailable"
        )

    assert _stored(connection) == (S.NOT_CONNECTED, "", "", None)
    assert not AuditEvent.objects.exists()


def test_a_long_reason_is_clipped_to_the_column(user):
    connection = connection_get_or_create(user=user, bank_code="vbank")

    connection_transition(connection=connection, to_status=S.ERROR, reason="x" * 100)

    assert _stored(connection)[1] == "x" * 40


def test_a_partial_sync_says_so_in_its_reason(user):
    connection = BankConnection.objects.create(user=user, bank_code="vbank", status=S.READY)

    connection_mark_synced(
        connection=connection,
        succeeded_at=datetime(2026, 12, 1, tzinfo=UTC),
        warning="2 transactions held in quarantine",
    )

    assert _stored(connection) == (
        S.READY,
        PARTIAL_SYNC_REASON,
        "2 transactions held in quarantine",
        None,
    )


@pytest.mark.parametrize("status", S.values)
def test_every_status_that_asks_something_of_the_user_says_it(status):
    message = connection_status_message(bank_code="vbank", status=status, last_error="")

    if status in (S.NOT_CONNECTED, S.READY):
        assert message == ""
    else:
        assert "Virtual Bank" in message


def test_a_stored_message_wins_over_the_status_default():
    assert (
        connection_status_message(bank_code="vbank", status=S.ERROR, last_error="HTTP 418")
        == "HTTP 418"
    )
    # A bank no longer configured is named by its code.
    assert "zbank" in connection_status_message(bank_code="zbank", status=S.ERROR, last_error="")
