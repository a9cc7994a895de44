"""Connections console (sync/admin.py): "sync now" calls the sync service and audits each row."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from audit.models import AuditEvent
from banking.clients.errors import BankAuthError
from banking.tests import factories
from sync import admin as sync_admin
from sync.exceptions import SyncAlreadyRunning
from sync.models import SyncRun, SyncStatus, SyncTrigger

CONNECTIONS = reverse("admin:banking_bankconnection_changelist")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser(
        email="ops@example.com", password="Ops-pass-2026"
    )


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def run_action(client, action: str, rows) -> list[tuple[str, str]]:
    response = client.post(
        CONNECTIONS, {"action": action, "_selected_action": [r.pk for r in rows]}
    )
    assert response.status_code == 302, response.content
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


def test_sync_now_calls_the_sync_service_with_admin_trigger_and_audits(
    staff_client, staff, make_user, monkeypatch
):
    anna, boris = make_user(email="anna@example.com"), make_user(email="boris@example.com")
    anna_vbank = factories.make_connection(user=anna, bank_code="vbank")
    boris_abank = factories.make_connection(user=boris, bank_code="abank")
    factories.make_connection(user=boris, bank_code="sbank")  # not selected
    calls = []

    def fake_start(*, connection, trigger, **kwargs):
        calls.append((connection.pk, trigger, kwargs))
        run = SyncRun.objects.create(connection=connection, user_id=connection.user_id)
        return run, True

    monkeypatch.setattr(sync_admin, "connection_sync_start", fake_start)

    messages = run_action(staff_client, "sync_now", [anna_vbank, boris_abank])

    assert sorted(calls) == sorted(
        [(anna_vbank.pk, SyncTrigger.ADMIN, {}), (boris_abank.pk, SyncTrigger.ADMIN, {})]
    )
    runs = {run.connection_id: run for run in SyncRun.objects.all()}
    assert sorted(messages[:2]) == sorted(
        [
            ("success", f"{anna_vbank}: sync run #{runs[anna_vbank.pk].pk} queued"),
            ("success", f"{boris_abank}: sync run #{runs[boris_abank.pk].pk} queued"),
        ]
    )
    event = AuditEvent.objects.get(action="admin.action", object_id=str(anna_vbank.pk))
    assert (event.actor_id, event.user_id, event.bank_code, event.object_type) == (
        staff.pk,
        anna.pk,
        "vbank",
        "BankConnection",
    )
    assert event.correlation_id == str(runs[anna_vbank.pk].correlation_id)
    assert event.details == {
        "action": "sync_now",
        "outcome": "succeeded",
        "sync_run_id": runs[anna_vbank.pk].pk,
        "created": True,
    }


def test_sync_now_on_a_running_connection_reports_the_active_run(staff_client, user, monkeypatch):
    connection = factories.make_connection(user=user)
    active = SyncRun.objects.create(
        connection=connection, user=user, status=SyncStatus.RUNNING, progress=40
    )
    monkeypatch.setattr(
        sync_admin,
        "connection_sync_start",
        lambda *, connection, trigger: (active, False),
    )

    messages = run_action(staff_client, "sync_now", [connection])

    assert messages == [("success", f"{connection}: a sync is already running (run #{active.pk})")]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            SyncAlreadyRunning("Another sync of this bank keeps starting; try again shortly."),
            "sync_now failed (sync_already_running): Another sync of this bank keeps starting; "
            "try again shortly.",
        ),
        (
            BankAuthError("VBank refused the team token", bank_code="vbank", status_code=401),
            "sync_now failed (bank_auth_failed): VBank refused the team token",
        ),
    ],
)
def test_sync_now_reports_a_failure_instead_of_crashing(
    staff_client, user, monkeypatch, error, expected
):
    connection = factories.make_connection(user=user)

    def failing_start(*, connection, trigger):
        raise error

    monkeypatch.setattr(sync_admin, "connection_sync_start", failing_start)

    messages = run_action(staff_client, "sync_now", [connection])

    assert messages == [("error", f"{connection}: {expected}")]
    assert SyncRun.objects.count() == 0
    assert AuditEvent.objects.get(action="admin.action").details["outcome"] == "failed"
