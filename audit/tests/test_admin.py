"""Audit admin: raw logs and events are read-only even for superusers; filters, search, links."""

import uuid
from datetime import UTC, datetime

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent, Direction, RawApiLog

RAW_LOGS = reverse("admin:audit_rawapilog_changelist")
EVENTS = reverse("admin:audit_auditevent_changelist")


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(
        django_user_model.objects.create_superuser(email="ops@example.com", password="Ops-2026!x")
    )
    return client


def exchange(*, status, endpoint="/accounts", bank="vbank", correlation_id="", payload=None):
    """A request row and its response row, sharing one exchange id."""
    exchange_id = uuid.uuid4()
    common = {
        "bank_code": bank,
        "endpoint": endpoint,
        "method": "GET",
        "exchange_id": exchange_id,
        "correlation_id": correlation_id,
    }
    request = RawApiLog.objects.create(
        direction=Direction.REQUEST, created_at=datetime(2025, 11, 20, 10, tzinfo=UTC), **common
    )
    response = RawApiLog.objects.create(
        direction=Direction.RESPONSE,
        status_code=status,
        payload=payload,
        created_at=datetime(2025, 11, 20, 10, 0, 1, tzinfo=UTC),
        **common,
    )
    return request, response


def shown(page) -> list[int]:
    assert page.status_code == 200
    return [row.pk for row in page.context["cl"].result_list]


@pytest.mark.parametrize("model", [RawApiLog, AuditEvent])
def test_superusers_cannot_add_change_or_delete_audit_rows(staff_client, model):
    request, _response = exchange(status=200)
    event = AuditEvent.objects.create(action="sync.started")
    row = request if model is RawApiLog else event
    opts = model._meta
    change_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk])
    delete_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[row.pk])
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")

    add = staff_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
    edit = staff_client.post(change_url, {"endpoint": "/tampered", "action": "tampered"})
    delete = staff_client.post(delete_url, {"post": "yes"})
    bulk = staff_client.post(
        changelist, {"action": "delete_selected", "_selected_action": [row.pk]}
    )
    view = staff_client.get(change_url)

    assert (add.status_code, edit.status_code, delete.status_code) == (403, 403, 403)
    assert bulk.status_code == 200  # no actions at all: the POST just shows the list
    assert view.status_code == 200
    assert "delete_selected" not in view.context["adminform"].model_admin.get_actions(
        view.wsgi_request
    )
    assert model.objects.count() == (2 if model is RawApiLog else 1)
    row.refresh_from_db()
    assert (row.endpoint if model is RawApiLog else row.action) == (
        "/accounts" if model is RawApiLog else "sync.started"
    )


def test_status_class_filter_returns_exactly_that_class(staff_client):
    _req_ok, ok = exchange(status=200)
    _req_refused, refused = exchange(status=404)
    _req_down, down = exchange(status=503)
    _req_lost, lost = exchange(status=None)

    assert shown(staff_client.get(RAW_LOGS, {"status_class": "4xx"})) == [refused.pk]
    assert shown(staff_client.get(RAW_LOGS, {"status_class": "5xx"})) == [down.pk]
    assert shown(staff_client.get(RAW_LOGS, {"status_class": "2xx"})) == [ok.pk]
    no_status = shown(staff_client.get(RAW_LOGS, {"status_class": "none"}))
    assert sorted(no_status) == sorted(
        [lost.pk, *RawApiLog.objects.filter(direction="request").values_list("pk", flat=True)]
    )


def test_bank_and_direction_filters(staff_client):
    exchange(status=200, bank="vbank")
    abank_request, abank_response = exchange(status=200, bank="abank")

    assert shown(staff_client.get(RAW_LOGS, {"bank_code": "abank"})) == [
        abank_response.pk,
        abank_request.pk,
    ]
    assert shown(
        staff_client.get(RAW_LOGS, {"bank_code": "abank", "direction__exact": "request"})
    ) == [abank_request.pk]


def test_correlation_id_link_filter_and_search(staff_client):
    run_request, run_response = exchange(status=200, correlation_id="corr-run-7")
    exchange(status=200, correlation_id="corr-other", endpoint="/accounts/acc-1/balances")

    by_link = shown(staff_client.get(RAW_LOGS, {"correlation_id": "corr-run-7"}))
    by_search = shown(staff_client.get(RAW_LOGS, {"q": "corr-run-7"}))
    by_endpoint = shown(staff_client.get(RAW_LOGS, {"q": "balances"}))

    assert by_link == by_search == [run_response.pk, run_request.pk]
    assert len(by_endpoint) == 2
    assert set(RawApiLog.objects.filter(pk__in=by_endpoint).values_list("endpoint", flat=True)) == {
        "/accounts/acc-1/balances"
    }


def test_a_request_links_to_its_response_and_back(staff_client):
    request, response = exchange(status=200)
    exchange(status=200)  # another exchange: must not be linked

    request_page = staff_client.get(reverse("admin:audit_rawapilog_change", args=[request.pk]))
    response_page = staff_client.get(reverse("admin:audit_rawapilog_change", args=[response.pk]))

    response_url = reverse("admin:audit_rawapilog_change", args=[response.pk])
    request_url = reverse("admin:audit_rawapilog_change", args=[request.pk])
    assert f'href="{response_url}"' in request_page.content.decode()
    assert f'href="{request_url}"' in response_page.content.decode()
    assert f'href="{request_url}"' not in request_page.content.decode()
    same_exchange = shown(staff_client.get(RAW_LOGS, {"exchange_id": str(request.exchange_id)}))
    assert same_exchange == [response.pk, request.pk]


def test_payload_is_pretty_printed_and_escaped(staff_client):
    _request, response = exchange(
        status=200, payload={"data": {"nickname": "<b>Зарплатная</b>", "balance": "1000.00"}}
    )

    html = staff_client.get(
        reverse("admin:audit_rawapilog_change", args=[response.pk])
    ).content.decode()

    # Indented two spaces per level, escaped, and in the bank's key order (stored as `json`).
    assert (
        "{\n  &quot;data&quot;: {\n"
        "    &quot;nickname&quot;: &quot;&lt;b&gt;Зарплатная&lt;/b&gt;&quot;,\n"
        "    &quot;balance&quot;: &quot;1000.00&quot;\n"
        "  }\n}"
    ) in html
    assert "<b>Зарплатная</b>" not in html


def test_raw_log_changelist_loads_no_payloads_and_counts_boundedly(staff_client):
    exchange(status=200, payload={"big": "x" * 1000})

    with CaptureQueriesContext(connection) as queries:
        page = staff_client.get(RAW_LOGS)

    assert page.status_code == 200
    sqls = [q["sql"] for q in queries.captured_queries if '"raw_api_logs"' in q["sql"]]
    assert all('"raw_api_logs"."payload"' not in sql for sql in sqls)
    assert all('"raw_api_logs"."headers"' not in sql for sql in sqls)
    counts = [sql for sql in sqls if "COUNT(" in sql]
    assert counts and all("LIMIT" in sql for sql in counts)
    assert not [sql for sql in sqls if sql.startswith('SELECT DISTINCT "raw_api_logs".')]


def test_audit_event_list_filters_by_action(staff_client, user):
    started = AuditEvent.objects.create(action="sync.started", user=user)
    AuditEvent.objects.create(action="consent.revoked", user=user)

    assert shown(staff_client.get(EVENTS, {"action": "sync.started"})) == [started.pk]


def test_audit_admins_refuse_change_even_when_asked_directly(rf, django_user_model, db):
    superuser = django_user_model.objects.create_superuser(
        email="root@example.com", password="Root-pass-2026"
    )
    request = rf.get("/")
    request.user = superuser

    for model in (RawApiLog, AuditEvent):
        model_admin = admin.site._registry[model]
        assert model_admin.has_add_permission(request) is False
        assert model_admin.has_change_permission(request) is False
        assert model_admin.has_delete_permission(request) is False
        assert model_admin.has_view_permission(request) is True
