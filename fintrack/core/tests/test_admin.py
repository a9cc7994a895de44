"""Every registered admin: changelist and change page open for staff with data, refused otherwise.

Parametrised over `admin.site._registry`, so a model registered later is covered automatically;
FinTrack's own models must each have a row builder below (asserted), others fall back to any row.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from fintrack.core.admin import CappedCountPaginator, pretty_json

FINTRACK_APPS = ("users", "banking", "consents", "sync", "analytics", "audit")
REGISTERED = sorted(admin.site._registry, key=lambda model: model._meta.label_lower)
MODEL_IDS = [model._meta.label_lower for model in REGISTERED]


def _url(model, view: str, *args) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def _build_rows(owner) -> dict[str, object]:
    """One row of every FinTrack model (and of the third-party admins), keyed by label."""
    from django.contrib.auth.models import Group
    from django_celery_beat.models import (
        ClockedSchedule,
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
        SolarSchedule,
    )
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

    from analytics.models import AnalyticsSnapshot, RecomputeRequest
    from audit.models import AuditEvent, Direction, RawApiBody, RawApiLog
    from banking.models import (
        AccountSummary,
        AccountTransactionCount,
        BankCircuitState,
        BankToken,
        CategoryRule,
        QuarantinedBankItem,
        TransactionAggregate,
    )
    from banking.tests import factories
    from consents.models import Consent, ConsentKind, ConsentStatus
    from sync.models import SyncRun, SyncStatus
    from users.models import ConnectRequest, OnboardingFlow, RevokedAccessToken

    now = timezone.now()
    connection = factories.make_connection(user=owner)
    account = factories.make_account(user=owner, connection=connection)
    transaction = factories.make_transaction(
        account=account, amount="-250.00", booking_date="2025-11-20", description="Coffee <b>"
    )
    run = SyncRun.objects.create(
        connection=connection, user=owner, status=SyncStatus.SUCCEEDED, progress=100
    )
    exchange = "7d0c4a52-8f7e-4c53-9a55-0d7c3b8e9b11"
    raw_request = RawApiLog.objects.create(
        user=owner,
        bank_code="vbank",
        endpoint="/accounts",
        method="GET",
        direction=Direction.REQUEST,
        correlation_id=str(run.correlation_id),
        exchange_id=exchange,
        created_at=now,
    )
    RawApiLog.objects.create(
        user=owner,
        bank_code="vbank",
        endpoint="/accounts",
        method="GET",
        direction=Direction.RESPONSE,
        status_code=200,
        payload={"data": {"account": []}},
        correlation_id=str(run.correlation_id),
        exchange_id=exchange,
        created_at=now,
    )
    outstanding = OutstandingToken.objects.create(
        user=owner, jti="jti-1", token="x.y.z", expires_at=now + timedelta(days=1)
    )
    rows = {
        "users.user": owner,
        "users.onboardingflow": OnboardingFlow.objects.get_or_create(user=owner)[0],
        "users.connectrequest": ConnectRequest.objects.create(
            user=owner,
            bank_code="sbank",
            client_id="team260-1",
            status="failed",
            error_code="bank_client_unknown",
            error="SBank does not know client team260-1",
        ),
        "users.revokedaccesstoken": RevokedAccessToken.objects.create(
            jti="revoked-jti-1", expires_at=now + timedelta(minutes=15)
        ),
        "banking.banktoken": BankToken.objects.create(
            bank_code="vbank",
            access_token="secret-token-value",
            expires_at=now + timedelta(hours=1),
            last_refreshed_at=now,
        ),
        "banking.bankcircuitstate": BankCircuitState.objects.create(
            bank_code="vbank",
            status="open",
            failures=10,
            trips=1,
            opened_at=now,
            next_probe_at=now + timedelta(seconds=30),
            reason="10 failed calls in a row",
            changed_at=now,
        ),
        "banking.bankconnection": connection,
        "banking.account": account,
        # Kept by the database's triggers, not created here.
        "banking.accounttransactioncount": AccountTransactionCount.objects.get(account=account),
        "banking.balancesnapshot": factories.make_snapshot(
            account=account, available="1000.00", as_of=datetime(2025, 11, 25, tzinfo=UTC)
        ),
        "banking.transactioncategory": transaction.category,
        "banking.categoryrule": CategoryRule.objects.create(
            user=owner,
            match_kind="merchant",
            pattern="Пятёрочка <b>",
            pattern_folded="пятерочка <b>",
            category=transaction.category,
        ),
        "banking.transaction": transaction,
        "banking.quarantinedbankitem": QuarantinedBankItem.objects.create(
            connection=connection,
            account=account,
            item_key="tx-bad-1",
            bank_transaction_id="tx-bad-1",
            reason="tx-bad-1: missing or non-numeric amount",
            raw_json={"transactionId": "tx-bad-1", "amount": {"amount": "12,50 <b>"}},
            first_seen_at=now,
            last_seen_at=now,
        ),
        "banking.transactionaggregate": TransactionAggregate.objects.create(
            user=owner,
            date=datetime(2025, 11, 20).date(),
            category=transaction.category,
            spending=Decimal("250.00"),
            transaction_count=1,
        ),
        "banking.accountsummary": AccountSummary.objects.create(
            user=owner, spendable_total=Decimal("1000.00"), accounts_count=1
        ),
        "banking.bankproduct": factories.make_product(),
        "banking.productagreement": factories.make_agreement(user=owner),
        "consents.consent": Consent.objects.create(
            user=owner,
            bank_code="vbank",
            kind=ConsentKind.ACCOUNTS,
            status=ConsentStatus.AUTHORIZED,
            bank_consent_id="consent-1",
            raw_response={"status": "approved"},
        ),
        "sync.syncrun": run,
        "analytics.analyticssnapshot": AnalyticsSnapshot.objects.create(
            user=owner, sts_amount=Decimal("1200.00"), breakdown={"terms": []}
        ),
        "analytics.recomputerequest": RecomputeRequest.objects.create(user=owner, requested_at=now),
        "audit.rawapilog": raw_request,
        "audit.rawapibody": RawApiBody.objects.create(
            digest="0" * 64,
            user=owner,
            payload={"data": {"account": []}},
            size_bytes=24,
            first_exchange_id=exchange,
            first_seen_at=now,
            last_seen_at=now,
        ),
        "audit.auditevent": AuditEvent.objects.create(action="sync.started", user=owner),
        "auth.group": Group.objects.create(name="operators"),
        "django_celery_beat.intervalschedule": IntervalSchedule.objects.create(
            every=5, period="minutes"
        ),
        "django_celery_beat.crontabschedule": CrontabSchedule.objects.create(minute="0", hour="4"),
        "django_celery_beat.solarschedule": SolarSchedule.objects.create(
            event="sunrise", latitude=Decimal("55.75"), longitude=Decimal("37.61")
        ),
        "django_celery_beat.clockedschedule": ClockedSchedule.objects.create(clocked_time=now),
        "token_blacklist.outstandingtoken": outstanding,
        "token_blacklist.blacklistedtoken": BlacklistedToken.objects.create(token=outstanding),
    }
    rows["django_celery_beat.periodictask"] = PeriodicTask.objects.get(
        name="purge old raw API logs"
    )
    rows.update(_sandbox_rows(now))
    return rows


def _sandbox_rows(now) -> dict[str, object]:
    """One row of each sandbox model its admin shows (the emulator's own tables)."""
    from sandbox import models as sandbox

    request = sandbox.AccountConsentRequest.objects.create(
        request_id="req-admin-1",
        bank="vbank",
        client_id="team260-1",
        requesting_bank="team260",
        status="approved",
        created_at=now,
    )
    return {
        "sandbox.sandboxclock": sandbox.SandboxClock.objects.update_or_create(
            id=1, defaults={"anchor_date": now.date()}
        )[0],
        "sandbox.faultconfig": sandbox.FaultConfig.objects.create(bank="abank"),
        "sandbox.approvalconfig": sandbox.ApprovalConfig.objects.create(bank="abank"),
        "sandbox.clientvolume": sandbox.ClientVolume.objects.create(
            client_id="team260-9", transactions_per_year=100
        ),
        "sandbox.accountconsentrequest": request,
        "sandbox.accountconsent": sandbox.AccountConsent.objects.create(
            consent_id="consent-admin-1",
            request=request,
            bank="vbank",
            client_id="team260-1",
            granted_to="team260",
            status="active",
            created_at=now,
            status_updated_at=now,
            expires_at=now + timedelta(days=90),
        ),
        "sandbox.productconsent": sandbox.ProductConsent.objects.create(
            request_id="pagcr-admin-1",
            bank="vbank",
            client_id="team260-1",
            granted_to="team260",
            status="pending",
            created_at=now,
            valid_until=now + timedelta(days=90),
        ),
    }


@pytest.fixture
def staff_client(client, django_user_model):
    staff = django_user_model.objects.create_superuser(
        email="ops@example.com", password="Ops-pass-2026"
    )
    client.force_login(staff)
    client.staff = staff
    return client


@pytest.fixture
def rows(make_user):
    return _build_rows(make_user(email="owner@example.com"))


def test_every_fintrack_model_is_registered_and_has_a_row_builder(db, make_user):
    rows = _build_rows(make_user(email="owner@example.com"))
    fintrack_models = {
        model._meta.label_lower
        for app in FINTRACK_APPS
        for model in apps.get_app_config(app).get_models()
    }

    assert fintrack_models - {model._meta.label_lower for model in REGISTERED} == set()
    assert fintrack_models - set(rows) == set()


@pytest.mark.parametrize("model", REGISTERED, ids=MODEL_IDS)
def test_changelist_opens_for_staff_with_data(staff_client, rows, model):
    response = staff_client.get(_url(model, "changelist"))

    assert response.status_code == 200


@pytest.mark.parametrize("model", REGISTERED, ids=MODEL_IDS)
def test_change_page_opens_for_staff_with_data(staff_client, rows, model):
    row = rows.get(model._meta.label_lower) or model._default_manager.first()
    if row is None:
        pytest.skip(f"no row of {model._meta.label}: add a builder to _build_rows")

    response = staff_client.get(_url(model, "change", row.pk))

    assert response.status_code == 200


@pytest.mark.parametrize("model", REGISTERED, ids=MODEL_IDS)
def test_changelist_is_refused_to_a_non_staff_user(client, make_user, model):
    client.force_login(make_user(email="customer@example.com"))

    response = client.get(_url(model, "changelist"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("model", REGISTERED, ids=MODEL_IDS)
def test_change_page_is_refused_to_a_non_staff_user(client, make_user, rows, model):
    client.force_login(make_user(email="customer@example.com"))
    row = rows.get(model._meta.label_lower) or model._default_manager.first()
    pk = row.pk if row is not None else 1

    response = client.get(_url(model, "change", pk))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_changelist_is_refused_to_anonymous_visitors(client, db):
    response = client.get(reverse("admin:audit_rawapilog_changelist"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_periodic_tasks_stay_editable_by_staff(staff_client, rows):
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(name="purge old raw API logs")
    model_admin = admin.site._registry[PeriodicTask]
    request = staff_client.get(_url(PeriodicTask, "change", task.pk)).wsgi_request

    assert model_admin.has_change_permission(request, task) is True
    assert model_admin.has_add_permission(request) is True


def test_pretty_json_indents_and_escapes_html():
    html = pretty_json({"name": "<script>alert(1)</script>", "сумма": "1 000"})

    assert html == (
        '<pre style="white-space: pre-wrap; max-height: 40em; overflow: auto; margin: 0;">'
        "{\n  &quot;name&quot;: &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;,\n"
        "  &quot;сумма&quot;: &quot;1 000&quot;\n}</pre>"
    )


def test_capped_paginator_counts_at_most_the_cap(db, make_user, monkeypatch):
    from audit.models import AuditEvent

    for _ in range(4):
        AuditEvent.objects.create(action="sync.started")
    monkeypatch.setattr(CappedCountPaginator, "COUNT_CAP", 3)

    paginator = CappedCountPaginator(AuditEvent.objects.all(), per_page=2)

    assert paginator.count == 3
    assert paginator.num_pages == 2


@pytest.mark.parametrize(
    "model",
    [m for m in REGISTERED if m._meta.app_label in FINTRACK_APPS],
    ids=[m._meta.label_lower for m in REGISTERED if m._meta.app_label in FINTRACK_APPS],
)
def test_every_computed_field_renders_without_error(rf, rows, model):
    # The admin shows "-" when a computed field raises ValueError/AttributeError: call them
    # directly so such a bug fails here instead of hiding.
    from django.contrib.auth.models import AnonymousUser

    model_admin = admin.site._registry[model]
    row = rows[model._meta.label_lower]
    request = rf.get("/")
    request.user = AnonymousUser()
    computed = [
        field
        for field in [*model_admin.get_readonly_fields(request, row), *model_admin.list_display]
        if callable(field) or (isinstance(field, str) and hasattr(model_admin, field))
    ]

    for field in computed:
        method = field if callable(field) else getattr(model_admin, field)
        assert method(row) is not None, field
