"""Banking admin: token hidden, "sync now" calls the sync service, raw JSON beside ours."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from banking import admin as banking_admin
from banking.clients.errors import BankAuthError
from banking.models import BankToken, Transaction
from banking.tests import factories
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


def test_the_bank_token_is_never_shown(staff_client):
    token = BankToken.objects.create(
        bank_code="vbank",
        access_token="eyJhbGciOiJIUzI1NiJ9.the-team-token.signature",
        expires_at=timezone.now() + timedelta(hours=2),
        last_refreshed_at=timezone.now(),
    )

    changelist = staff_client.get(reverse("admin:banking_banktoken_changelist"))
    change = staff_client.get(reverse("admin:banking_banktoken_change", args=[token.pk]))

    for page in (changelist, change):
        assert page.status_code == 200
        assert "the-team-token" not in page.content.decode()
        assert "access_token" not in page.content.decode()
    assert "expires at" in change.content.decode().lower()


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

    monkeypatch.setattr(banking_admin, "connection_sync_start", fake_start)

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
        banking_admin,
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

    monkeypatch.setattr(banking_admin, "connection_sync_start", failing_start)

    messages = run_action(staff_client, "sync_now", [connection])

    assert messages == [("error", f"{connection}: {expected}")]
    assert SyncRun.objects.count() == 0
    assert AuditEvent.objects.get(action="admin.action").details["outcome"] == "failed"


def test_transaction_page_shows_the_raw_bank_json_beside_the_normalised_fields(staff_client, user):
    account = factories.make_account(user=user)
    transaction = factories.make_transaction(
        account=account, amount="-349.90", booking_date="2025-11-20", merchant_name="Пятёрочка"
    )
    Transaction.objects.filter(pk=transaction.pk).update(
        raw_json={
            "transactionId": transaction.bank_transaction_id,
            "amount": {"amount": "349.90", "currency": "RUB"},
            "creditDebitIndicator": "Debit",
            "transactionInformation": "<script>alert('x')</script>",
        }
    )

    page = staff_client.get(reverse("admin:banking_transaction_change", args=[transaction.pk]))

    html = page.content.decode()
    assert page.status_code == 200
    assert "How we interpret it (normalised)" in html
    assert "Raw bank JSON that produced this row" in html
    assert html.index("How we interpret it") < html.index("Raw bank JSON that produced")
    assert "-349.90" in html
    assert "&quot;creditDebitIndicator&quot;: &quot;Debit&quot;" in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "<script>alert(" not in html


def test_synced_rows_cannot_be_edited_or_deleted_through_admin(staff_client, user):
    transaction = factories.make_transaction(
        account=factories.make_account(user=user), amount="-10.00", booking_date="2025-11-20"
    )
    change_url = reverse("admin:banking_transaction_change", args=[transaction.pk])

    edit = staff_client.post(change_url, {"amount": "999.00"})
    delete = staff_client.post(
        reverse("admin:banking_transaction_delete", args=[transaction.pk]), {"post": "yes"}
    )

    assert (edit.status_code, delete.status_code) == (403, 403)
    assert Transaction.objects.get(pk=transaction.pk).amount == transaction.amount


def test_transaction_changelist_leaves_raw_json_out_of_its_query(staff_client, user):
    factories.make_transaction(
        account=factories.make_account(user=user), amount="-10.00", booking_date="2025-11-20"
    )

    with CaptureQueriesContext(db_connection) as queries:
        page = staff_client.get(reverse("admin:banking_transaction_changelist"))

    assert page.status_code == 200
    selects = [q["sql"] for q in queries.captured_queries if 'FROM "transactions"' in q["sql"]]
    assert selects
    assert all('"transactions"."raw_json"' not in sql for sql in selects)
    assert all("COUNT(*)" not in sql or "LIMIT" in sql for sql in selects)
    # No list filter scans the table for its options.
    assert not [sql for sql in selects if sql.startswith('SELECT DISTINCT "transactions".')]
