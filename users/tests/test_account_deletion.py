"""DELETE /api/auth/me: consents revoked at the banks, every row of the user gone from every table
(walked over every model), the audit trail kept without personal data; a wrong password changes
nothing; a bank that is down is recorded and retried, and stops nothing."""

import re
from dataclasses import asdict

import pytest
import responses
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import connection, models
from rest_framework.test import APIClient

from audit.models import AuditEvent, RawApiLog
from audit.services import AuditAction, audit_event_record
from banking.models import Account, CategoryRule, Transaction, TransactionCategory
from banking.tests.factories import client_id_of
from consents.models import Consent
from sandbox.models import AccountConsent, ProductConsent
from sync.tests.ground_truth import sandbox_client_sync
from users.deletion import PSEUDONYM_PREFIX, RevocationRetry
from users.models import OnboardingFlow, User
from users.services import token_pair_for

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "Correct-Horse-2026"
ALL_BANKS = ["vbank", "abank", "sbank"]
# The bank emulator's own tables: what the banks hold, not FinTrack's data.
NOT_FINTRACK = {"sandbox"}
# Relations to the user that do not cascade, each with what deletion does about it.
NON_CASCADING_RELATIONS = {
    ("audit", "auditevent", "user"): "kept, anonymised (retention)",
    ("audit", "auditevent", "actor"): "kept, anonymised (retention)",
    ("audit", "rawapilog", "user"): "deleted first",
    ("token_blacklist", "outstandingtoken", "user"): "deleted first",
}


def _fintrack_models() -> list[type[models.Model]]:
    """Every model FinTrack stores rows in (many-to-many tables too), the sandbox's aside."""
    return [
        model
        for model in apps.get_models(include_auto_created=True)
        if model._meta.app_label not in NOT_FINTRACK and model._meta.managed
    ]


def _foreign_keys(model) -> list[models.Field]:
    return [
        field
        for field in model._meta.concrete_fields
        if field.is_relation and (field.many_to_one or field.one_to_one)
    ]


def _owned_rows(user) -> dict[type[models.Model], set]:
    """The user's row and every row that refers to it, directly or through other owned rows."""
    owned: dict[type[models.Model], set] = {User: {user.pk}}
    changed = True
    while changed:
        changed = False
        for model in _fintrack_models():
            for field in _foreign_keys(model):
                targets = owned.get(field.related_model)
                if not targets:
                    continue
                found = set(
                    model._base_manager.filter(**{f"{field.name}__in": list(targets)})
                    .order_by()
                    .values_list("pk", flat=True)
                )
                if found - owned.get(model, set()):
                    owned.setdefault(model, set()).update(found)
                    changed = True
    # The admin's history names rows by content type and id (a generic relation).
    for model, pks in list(owned.items()):
        if model._meta.auto_created:
            continue
        about = LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(model),
            object_id__in=[str(pk) for pk in pks],
        ).values_list("pk", flat=True)
        owned.setdefault(LogEntry, set()).update(about)
    return owned


def _rows_per_model() -> dict[str, int]:
    return {model._meta.label: model._base_manager.count() for model in _fintrack_models()}


def _text_columns(model) -> list[str]:
    text_types = (models.CharField, models.TextField, models.JSONField)
    return [
        field.column
        for field in model._meta.concrete_fields
        if isinstance(field, text_types) and not field.is_relation
    ]


def _texts_naming(needles: dict[str, re.Pattern]) -> list[str]:
    """Every (table, column, what) where a stored text or JSON value contains a needle."""
    hits = []
    with connection.cursor() as cursor:
        for model in _fintrack_models():
            columns = _text_columns(model)
            if not columns:
                continue
            table = connection.ops.quote_name(model._meta.db_table)
            quoted = ", ".join(connection.ops.quote_name(column) for column in columns)
            cursor.execute(f"SELECT {quoted} FROM {table}")
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    text = str(value) if value is not None else ""
                    hits.extend(
                        f"{model._meta.db_table}.{column}: {what}"
                        for what, pattern in needles.items()
                        if pattern.search(text)
                    )
    return hits


def _needles(user, client_id: str) -> dict[str, re.Pattern]:
    values = {"email": user.email, "phone": user.phone, "client id": client_id}
    # team260-1 must not match team260-10.
    return {what: re.compile(re.escape(value) + r"(?!\d)") for what, value in values.items()}


def _sessions_of(user) -> list[str]:
    return [
        session.pk
        for session in Session.objects.all()
        if session.get_decoded().get("_auth_user_id") == str(user.pk)
    ]


def _delete(user, password=PASSWORD, *, access: str | None = None):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access or token_pair_for(user)['access']}")
    body = {"password": password} if password is not None else {}
    return client.delete("/api/auth/me", body, format="json")


def _live_bank_consents(client_id: str) -> int:
    return (
        AccountConsent.objects.filter(client_id=client_id, status="active").count()
        + ProductConsent.objects.filter(client_id=client_id, status="active").count()
    )


@pytest.fixture
def world(sandbox_banks, make_user):
    """Anna, synced at all three banks with every kind of row FinTrack keeps about a user;
    Bob, synced at one, whose data must stay as it is."""
    anna = make_user(email="anna@example.com", phone="+79001234567", password=PASSWORD)
    bob = make_user(email="bob@example.com", password=PASSWORD)
    ops = make_user(email="ops@example.com", password=PASSWORD, is_staff=True)
    sandbox_client_sync(user=anna, banks=ALL_BANKS)
    sandbox_client_sync(user=bob, banks=["vbank"])
    # Who each is at the banks: their connections' client (one demo client at every bank).
    anna_client = client_id_of(user=anna)
    assert {client_id_of(user=anna, bank_code=code) for code in ALL_BANKS} == {anna_client}

    OnboardingFlow.objects.create(user=anna, selected_banks=ALL_BANKS, step="done")
    CategoryRule.objects.create(
        user=anna,
        match_kind="merchant",
        pattern="Пятёрочка",
        pattern_folded="пятерочка",
        category=TransactionCategory.objects.get(code="groceries"),
    )
    Transaction.objects.filter(
        pk=Transaction.objects.filter(user=anna).order_by("pk").values("pk")[:1]
    ).update(note="birthday present for anna@example.com")
    api = APIClient()
    login = {"login": "anna@example.com", "password": PASSWORD}
    sessions = [api.post("/api/auth/login", login, format="json").json() for _ in range(2)]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {sessions[1]['access']}")
    assert (
        api.post("/api/auth/logout", {"refresh": sessions[1]["refresh"]}, format="json").status_code
        == 204
    )
    # The admin's traces: a staff member changed Anna; Anna has a Django (admin) session.
    LogEntry.objects.log_actions(
        user_id=ops.pk,
        queryset=[anna],
        action_flag=CHANGE,
        change_message="Changed time zone.",
        single_object=True,
    )
    # A bank's error text naming the client, as sync failures record it.
    audit_event_record(
        action=AuditAction.SYNC_FAILED,
        user=anna,
        bank_code="abank",
        details={"error": f"abank: client {anna_client} has no consent"},
    )
    session = SessionStore()
    session["_auth_user_id"] = str(anna.pk)
    session.create()

    assert _live_bank_consents(anna_client) == 6
    assert _sessions_of(anna)
    return {
        "anna": anna,
        "bob": bob,
        "ops": ops,
        "access": sessions[0]["access"],
        "anna_client": anna_client,
    }


def _bob_counts(bob) -> dict[str, int]:
    return {
        "transactions": Transaction.objects.filter(user=bob).count(),
        "accounts": Account.objects.filter(user=bob).count(),
        "consents": Consent.objects.filter(user=bob).count(),
        "raw_logs": RawApiLog.objects.filter(user=bob).count(),
        "audit": AuditEvent.objects.filter(user=bob).count(),
        "live_bank_consents": _live_bank_consents(client_id_of(user=bob)),
    }


def _assert_nothing_of(anna, owned, *, subject: str, client_id: str) -> None:
    """No row of Anna's left in any table, her audit events kept under the pseudonym only."""
    assert not User.objects.filter(pk=anna.pk).exists()
    # 1. No foreign key or one-to-one anywhere still names her.
    user_model = apps.get_model("users", "User")
    for model in _fintrack_models():
        for field in _foreign_keys(model):
            if field.related_model is user_model:
                left = model._base_manager.filter(**{field.attname: anna.pk}).count()
                assert left == 0, f"{model._meta.label}.{field.name}: {left} rows"
    # 2. Every row she owned, directly or through other rows, is gone: audit events excepted.
    for model, pks in owned.items():
        left = set(model._base_manager.filter(pk__in=list(pks)).values_list("pk", flat=True))
        if model is AuditEvent:
            continue
        assert not left, f"{model._meta.label}: {len(left)} of {len(pks)} rows left"
    kept = AuditEvent.objects.filter(pk__in=list(owned[AuditEvent]))
    assert kept.count() == len(owned[AuditEvent])
    for event in kept:
        assert event.user_id is None and event.actor_id is None
        assert event.details["subject"] == subject, event.action
        assert not (event.object_type == "User" and event.object_id == str(anna.pk))
    # 3. No text or JSON column names her: email, phone or bank client id.
    assert _texts_naming(_needles(anna, client_id)) == []
    assert _sessions_of(anna) == []


def test_deletion_leaves_no_row_of_the_user_in_any_table(world):
    anna, bob = world["anna"], world["bob"]
    owned = _owned_rows(anna)
    # The fixture reached every kind of row deletion must handle.
    for label in (
        "banking.Transaction",
        "banking.Account",
        "banking.BalanceSnapshot",
        "banking.BankConnection",
        "banking.ProductAgreement",
        "banking.TransactionAggregate",
        "banking.AccountSummary",
        "banking.CategoryRule",
        "consents.Consent",
        "sync.SyncRun",
        "analytics.AnalyticsSnapshot",
        "users.OnboardingFlow",
        "audit.AuditEvent",
        "audit.RawApiLog",
        "token_blacklist.OutstandingToken",
        "token_blacklist.BlacklistedToken",
        "admin.LogEntry",
    ):
        assert owned.get(apps.get_model(label)), f"the fixture made no {label}"
    assert _texts_naming(_needles(anna, world["anna_client"]))  # the scan does find her before
    bob_before = _bob_counts(bob)
    transactions_total = Transaction.objects.filter(user=anna).count()

    response = _delete(anna, access=world["access"])

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["deleted"] is True
    assert len(body["consents"]) == 6
    assert all(item["revoked"] and not item["retrying"] for item in body["consents"])
    assert {item["bank_code"] for item in body["consents"]} == set(ALL_BANKS)
    assert body["rows_deleted"] >= transactions_total
    # At the banks: none of Anna's consents is active any more.
    assert _live_bank_consents(world["anna_client"]) == 0
    deleted = AuditEvent.objects.get(action="user.deleted")
    subject = deleted.details["subject"]
    assert subject.startswith(PSEUDONYM_PREFIX) and len(subject) == len(PSEUDONYM_PREFIX) + 16
    assert deleted.details["consents_revoked"] == 6
    assert deleted.details["revocations_failed"] == []
    assert deleted.details["rows_deleted"]["banking.Transaction"] == transactions_total
    _assert_nothing_of(anna, owned, subject=subject, client_id=world["anna_client"])
    # Her tokens are refused; Bob's data is all there.
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {world['access']}")
    assert client.get("/api/auth/me").status_code == 401
    assert _bob_counts(bob) == bob_before
    assert User.objects.filter(pk__in=[bob.pk, world["ops"].pk]).count() == 2


def test_every_relation_to_the_user_that_does_not_cascade_is_handled():
    """A new SET_NULL/PROTECT/DO_NOTHING foreign key to the user needs a decision here."""
    found = {}
    for model in _fintrack_models():
        for field in _foreign_keys(model):
            if field.related_model is User and field.remote_field.on_delete is not models.CASCADE:
                found[(model._meta.app_label, model._meta.model_name, field.name)] = (
                    field.remote_field.on_delete.__name__
                )
    assert set(found) == set(NON_CASCADING_RELATIONS), found


@pytest.mark.parametrize(
    ("password", "code"), [("not-my-password", "wrong_password"), (None, "validation_error")]
)
def test_a_wrong_or_missing_password_is_a_400_and_changes_nothing(world, password, code):
    anna = world["anna"]
    before = _rows_per_model()

    response = _delete(anna, password, access=world["access"])

    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) == {"code", "message", "extra"} and body["code"] == code
    assert list(body["extra"]["fields"]) == ["password"]
    assert _rows_per_model() == before
    assert _live_bank_consents(world["anna_client"]) == 6
    assert Consent.objects.filter(user=anna, status="authorized").count() == 6
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {world['access']}")
    assert client.get("/api/auth/me").status_code == 200


def test_a_bank_that_is_down_stops_nothing_and_its_revocation_is_retried(
    world, sandbox_banks, monkeypatch
):
    import users.tasks
    from users.tasks import consent_revocation_retry_task

    anna = world["anna"]
    owned = _owned_rows(anna)
    client_id = world["anna_client"]
    scheduled: list[tuple[RevocationRetry, int]] = []
    monkeypatch.setattr(
        users.tasks,
        "consent_revocation_retry_later",
        lambda *, retry, attempt: scheduled.append((retry, attempt)),
    )
    sbank = re.escape(sandbox_banks["sbank"]["base_url"])

    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add(responses.DELETE, re.compile(rf"{sbank}/.*"), status=503, body="down")
        mock.add_passthru(re.compile(".*"))
        response = _delete(anna, access=world["access"])

    assert response.status_code == 200, response.content
    outcomes = {(item["bank_code"], item["kind"]): item for item in response.json()["consents"]}
    for kind in ("accounts", "products"):
        assert outcomes[("sbank", kind)]["revoked"] is False
        assert outcomes[("sbank", kind)]["retrying"] is True
        assert outcomes[("sbank", kind)]["error_code"] == "bank_unavailable"
        assert outcomes[("vbank", kind)]["revoked"] and outcomes[("abank", kind)]["revoked"]
    subject = AuditEvent.objects.get(action="user.deleted").details["subject"]
    # FinTrack's data is gone all the same, the failures audited under the pseudonym.
    _assert_nothing_of(anna, owned, subject=subject, client_id=world["anna_client"])
    failed = AuditEvent.objects.filter(action="consent.revoke_failed")
    assert {(event.bank_code, event.details["kind"]) for event in failed} == {
        ("sbank", "accounts"),
        ("sbank", "products"),
    }
    assert ProductConsent.objects.filter(client_id=client_id, bank="sbank", status="active")
    assert AccountConsent.objects.filter(client_id=client_id, bank="sbank", status="active")

    # The retries (one per consent, sent after the commit) revoke them once the bank is back,
    # writing raw logs without a user and without the client id.
    assert sorted((retry.kind, attempt) for retry, attempt in scheduled) == [
        ("accounts", 0),
        ("products", 0),
    ]
    for retry, attempt in scheduled:
        assert retry.subject == subject
        assert retry.client_id == (client_id if retry.kind == "products" else "")
        result = consent_revocation_retry_task.apply(
            kwargs={"retry": asdict(retry), "attempt": attempt}
        )
        assert result.get() == "revoked"

    assert _live_bank_consents(client_id) == 0
    retried = AuditEvent.objects.filter(action="consent.revoke_retried")
    assert sorted(event.details["kind"] for event in retried) == ["accounts", "products"]
    assert all(event.details["subject"] == subject for event in retried)
    assert _texts_naming(_needles(anna, client_id)) == []


def test_a_retry_while_the_bank_is_still_down_asks_for_another_and_gives_up_at_the_cap(
    sandbox_banks,
):
    from users.deletion import REVOCATION_RETRY_ATTEMPTS, consent_revocation_retry

    retry = RevocationRetry(
        bank_code="vbank",
        kind="products",
        bank_consent_id="pagc-0000",
        client_id="team260-77",
        subject="deleted-user-0123456789abcdef",
    )
    vbank = re.escape(sandbox_banks["vbank"]["base_url"])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.DELETE, re.compile(rf"{vbank}/.*"), status=502, body="down")
        mock.add_passthru(re.compile(".*"))
        assert consent_revocation_retry(retry=retry, attempt=0) == "retry"
        last = REVOCATION_RETRY_ATTEMPTS - 1
        assert consent_revocation_retry(retry=retry, attempt=last) == "gave_up"

    events = AuditEvent.objects.filter(action="consent.revoke_failed").order_by("pk")
    assert [(e.details["attempt"], e.details["retrying"]) for e in events] == [
        (1, True),
        (REVOCATION_RETRY_ATTEMPTS, False),
    ]
    logs = RawApiLog.objects.filter(endpoint__contains="pagc-0000")
    assert logs.exists() and not logs.filter(user__isnull=False).exists()
    assert not RawApiLog.objects.filter(endpoint__contains="team260-77").exists()


def test_revocation_retries_back_off_up_to_an_hour():
    from users.tasks import revocation_retry_countdown

    assert 30 <= revocation_retry_countdown(attempt=0) <= 60
    assert 60 <= revocation_retry_countdown(attempt=1) <= 120
    assert all(1800 <= revocation_retry_countdown(attempt=n) <= 3600 for n in (6, 9, 40))


def test_no_delete_signal_is_connected_to_transactions():
    """users.deletion deletes transactions in one statement, which sends no signal."""
    from django.db.models.signals import post_delete, pre_delete

    assert not pre_delete.has_listeners(Transaction)
    assert not post_delete.has_listeners(Transaction)


def test_the_schema_documents_the_three_endpoints_with_their_errors():
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    delete = paths["/api/auth/me"]["delete"]
    assert delete["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "AccountDeleteInputRequest"
    )
    password = paths["/api/auth/password"]["post"]
    export = paths["/api/auth/me/export"]["get"]
    assert "application/zip" in export["responses"]["200"]["content"]
    for operation, errors in ((delete, "400 401 429"), (password, "400 401 429"),
                              (export, "401 429")):  # fmt: skip
        for status in errors.split():
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert schema["$ref"].endswith("/ErrorOutput"), (operation["operationId"], status)
