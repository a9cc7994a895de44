"""The judges' console without a browser: the landing page, the JSON 404 of unknown /api/ URLs,
admin times, the highlighted bank JSON, line diffs, the transaction and raw-log pages and the sync
timeline (its pure SVG functions and its admin page)."""

import html
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.urls import reverse

from audit.models import Direction, RawApiLog
from banking.admin import transaction_reading
from banking.models import CategorySource, Transaction
from banking.tests import factories
from fintrack.core.admin import (
    DerivedField,
    admin_date,
    admin_datetime,
    derived_fields_table,
    highlighted_json,
    json_reindent,
    text_line_diff,
    used_json_paths,
)
from sync.models import SyncRun, SyncStatus
from sync.timeline import (
    BankCall,
    RunBar,
    call_step,
    calls_from_logs,
    durations_svg,
    run_timeline_svg,
    step_summaries,
)

T0 = datetime(2026, 12, 1, 9, 40, 5, tzinfo=UTC)
CARD_PURCHASE = {
    "accountId": "acc-0010",
    "transactionId": "tx-20010-20261130-1",
    "amount": {"amount": "787.79", "currency": "RUB"},
    "creditDebitIndicator": "Debit",
    "status": "completed",
    "bookingDateTime": "2026-11-30T21:20:54Z",
    "valueDateTime": "2026-11-30T21:20:54Z",
    "transactionInformation": "Метрополитен - Москва",
    "bankTransactionCode": {"code": "01"},
    "merchant": {
        "merchantId": "m-1",
        "name": "Метрополитен",
        "mccCode": "4111",
        "category": "transport",
        "city": "Москва",
    },
    "transactionLocation": {"city": "Москва", "country": "RUS"},
    "card": {"cardId": "card-1", "cardNumber": "****2768"},
    "counterparty": None,
}


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(
        django_user_model.objects.create_superuser(email="ops@example.com", password="Ops-2026!x")
    )
    return client


def _plain(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


# --- Landing page and the JSON 404 -----------------------------------------------------------


def test_landing_page_links_swagger_admin_sandbox_and_health(client, settings):
    settings.SANDBOX_ENABLED = True

    page = client.get("/")

    assert page.status_code == 200
    links = re.findall(r'data-link="(\w+)"', page.content.decode())
    hrefs = re.findall(r'<a href="([^"]+)" data-link', page.content.decode())
    assert links == ["docs", "admin", "sandbox", "health"]
    assert hrefs == ["/api/docs/", "/admin/", "/sandbox/vbank/", "/api/health"]


def test_landing_page_leaves_the_sandbox_out_when_it_is_off(client, settings):
    settings.SANDBOX_ENABLED = False

    page = client.get("/")

    assert re.findall(r'data-link="(\w+)"', page.content.decode()) == ["docs", "admin", "health"]


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("method", ["get", "post", "delete"])
@pytest.mark.parametrize("url", ["/api/no-such-thing", "/api/transactions/abc", "/api/a/b/c/"])
def test_unknown_api_urls_answer_the_standard_json_404(client, settings, debug, method, url):
    settings.DEBUG = debug
    client = type(client)(enforce_csrf_checks=True)  # no CSRF 403 before the 404

    response = getattr(client, method)(url)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"code": "not_found", "message": "No such endpoint.", "extra": {}}


def test_an_api_path_missing_its_trailing_slash_is_redirected_to_it(client):
    response = client.get("/api/docs?x=1")

    assert response.status_code == 301
    assert response["Location"] == "/api/docs/?x=1"


def test_known_api_urls_still_answer(client, db):
    assert client.get("/api/health").status_code == 200
    assert client.get("/api/transactions").json()["code"] == "not_authenticated"


def test_an_unknown_url_outside_the_api_is_not_json(client):
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


# --- Admin times ------------------------------------------------------------------------------


def test_admin_times_are_moscow_time_with_seconds_and_zone_by_default():
    assert admin_datetime(T0) == "2026-12-01 12:40:05 MSK"
    assert admin_datetime(T0.replace(tzinfo=None)) == "2026-12-01 12:40:05 MSK"  # naive = UTC
    assert admin_datetime(None) == "—"
    assert admin_date(T0.date()) == "2026-12-01"


def test_admin_time_zone_setting_changes_the_zone(settings):
    settings.ADMIN_TIME_ZONE = "Asia/Novosibirsk"

    assert admin_datetime(T0) == "2026-12-01 16:40:05 +07"


def test_changelists_and_change_pages_show_local_times(staff_client, user):
    run = SyncRun.objects.create(
        connection=factories.make_connection(user=user), user=user, status=SyncStatus.SUCCEEDED
    )
    SyncRun.objects.filter(pk=run.pk).update(created_at=T0, started_at=T0 + timedelta(seconds=2))

    changelist = staff_client.get(reverse("admin:sync_syncrun_changelist")).content.decode()
    change = staff_client.get(reverse("admin:sync_syncrun_change", args=[run.pk])).content.decode()

    assert '<td class="field-created_at nowrap">2026-12-01 12:40:05 MSK</td>' in changelist
    assert "2026-12-01 12:40:07 MSK" in change  # started_at, a readonly field
    assert "2026-12-01 12:40:05 MSK" in change


def test_every_changelist_without_its_own_template_loads_the_console_stylesheet(staff_client, user):
    from django.contrib import admin

    from fintrack.core.admin import CHANGE_LIST_TEMPLATE

    assert {
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if model_admin.change_list_template != CHANGE_LIST_TEMPLATE
    } == set()
    page = staff_client.get(reverse("admin:users_user_changelist")).content.decode()
    assert "fintrack/admin.css" in page
    assert 'id="nav-sidebar"' not in page


# --- Highlighted JSON, used paths, the derived table -----------------------------------------


def test_highlighted_json_prints_exactly_what_json_dumps_prints_in_the_banks_order():
    document = {"z": 1, "a": {"b": [1, {"c": None}, []], "e": {}}, "s": "<b>'q'</b>"}

    markup = highlighted_json(document, {("a", "b", 1, "c"): "field c", ("s",): "text"})

    assert _plain(markup) == json.dumps(document, indent=2, ensure_ascii=False)
    assert (
        '<span class="ft-used" data-path="a.b[1].c" title="a.b[1].c → field c">'
        "&quot;c&quot;: null</span>"
    ) in markup
    assert "&lt;b&gt;&#x27;q&#x27;&lt;/b&gt;" in markup
    assert "<b>" not in markup


def test_used_paths_point_at_a_null_parent_and_skip_keys_simply_absent():
    document = {"merchant": None, "amount": {"amount": "1.00"}}
    fields = [
        DerivedField("merchant", "Merchant", "", (("merchant", "name"),)),
        DerivedField("amount", "Amount", "1.00", (("amount", "amount"), ("amount", "currency"))),
    ]

    assert used_json_paths(document, fields) == {
        ("merchant",): "Merchant (merchant.name absent)",
        ("amount", "amount"): "Amount",
    }


def test_derived_table_escapes_values_and_strikes_absent_sources():
    table = derived_fields_table(
        {"a": 1}, [DerivedField("x", "X <i>", "<script>", (("a",), ("b",)), how="a <b>")]
    )

    assert '<code class="ft-src">a</code> + <code class="ft-src ft-src-absent">b</code>' in table
    assert "&lt;script&gt;" in table and "X &lt;i&gt;" in table and "a &lt;b&gt;" in table


def test_json_reindent_lays_out_compact_json_as_json_dumps_and_survives_a_cut():
    document = {"a": [1, {"b": 'x,"y":{'}], "e": {}, "l": [], "n": None, "u": "Москва"}
    compact = json.dumps(document, separators=(",", ":"), ensure_ascii=False)

    assert json_reindent(compact) == json.dumps(document, indent=2, ensure_ascii=False)
    assert json_reindent('{"data":[{"id":"tx-1"},{"id":"tx') == (
        '{\n  "data": [\n    {\n      "id": "tx-1"\n    },\n    {\n      "id": "tx'
    )


def test_text_line_diff_counts_and_escapes_changed_lines():
    diff, added, removed = text_line_diff(
        "a\n<b>\nc", "a\n<B>\nc\nd", old_label="old", new_label="new"
    )

    assert (added, removed) == (2, 1)
    assert '<span class="ft-diff-del">-&lt;b&gt;</span>' in diff
    assert (
        '<span class="ft-diff-add">+&lt;B&gt;</span><span class="ft-diff-same"> c</span>'
        '<span class="ft-diff-add">+d</span>'
    ) in diff
    assert text_line_diff("same", "same", old_label="a", new_label="b") == ("", 0, 0)


# --- The transaction page ---------------------------------------------------------------------


def _card_purchase(user) -> Transaction:
    account = factories.make_account(user=user, bank_account_id="acc-0010")
    transaction = factories.make_transaction(
        account=account,
        amount="-787.79",
        booking_date=datetime(2026, 11, 30, 21, 20, 54, tzinfo=UTC),
        description="Метрополитен - Москва",
        merchant_name="Метрополитен",
        merchant_category="transport",
        mcc="4111",
        bank_transaction_id="tx-20010-20261130-1",
    )
    Transaction.objects.filter(pk=transaction.pk).update(
        raw_json=CARD_PURCHASE, bank_transaction_code="01"
    )
    transaction.refresh_from_db()
    return transaction


def test_transaction_reading_names_each_figure_and_the_keys_it_came_from(user):
    user.time_zone = "Europe/Moscow"
    user.save()
    fields = {field.key: field for field in transaction_reading(_card_purchase(user))}

    assert str(fields["amount"].value) == ('<span class="ft-amount ft-out">-787.79</span> RUB')
    assert fields["amount"].sources == (("amount", "amount"), ("creditDebitIndicator",))
    # 21:20 UTC on Nov 30 is already Dec 1 in Moscow: the user's day, as the API's local_date.
    assert (fields["local_date"].value, fields["booking_date"].value) == (
        "2026-12-01",
        "2026-12-01 00:20:54 MSK",
    )
    assert fields["status"].how == "the bank's “completed”"
    assert fields["merchant"].value == "Метрополитен"
    assert fields["bank_transaction_code"].sources == (("bankTransactionCode", "code"),)
    assert fields["category"].value == "transport — Transport / Транспорт"
    assert fields["category"].how == "built-in rule “mcc” → transport"
    assert fields["category"].sources == (("merchant", "mccCode"),)
    assert "income_kind" not in fields


def test_a_category_the_user_set_says_so_instead_of_a_rule(user):
    transaction = _card_purchase(user)
    Transaction.objects.filter(pk=transaction.pk).update(
        category=factories.category("entertainment"), category_source=CategorySource.USER
    )
    transaction.refresh_from_db()

    (category,) = [f for f in transaction_reading(transaction) if f.key == "category"]

    assert category.how == "Set by the user: kept by every later sync"
    assert category.sources == ()


def test_transaction_page_shows_both_panes_and_highlights_only_the_keys_read(staff_client, user):
    transaction = _card_purchase(user)

    page = staff_client.get(reverse("admin:banking_transaction_change", args=[transaction.pk]))

    markup = page.content.decode()
    highlighted = set(re.findall(r'class="ft-used[^"]*" data-path="([^"]+)"', markup))
    assert highlighted == {
        "accountId",
        "transactionId",
        "amount.amount",
        "amount.currency",
        "creditDebitIndicator",
        "status",
        "bookingDateTime",
        "valueDateTime",
        "transactionInformation",
        "bankTransactionCode.code",
        "merchant.name",
        "merchant.mccCode",
        "merchant.category",
        "counterparty",
    }
    assert markup.index("How we interpret it (normalised)") < markup.index(
        "Raw bank JSON that produced this row"
    )
    assert 'data-field="amount"' in markup and "fintrack/admin.css" in markup


# --- The raw-log page -------------------------------------------------------------------------


def _exchange(*, user, correlation_id, at, payload, endpoint="/accounts?client_id=team260-1"):
    exchange_id = uuid.uuid4()
    common = {
        "user": user,
        "bank_code": "vbank",
        "endpoint": endpoint,
        "method": "GET",
        "exchange_id": exchange_id,
        "correlation_id": correlation_id,
    }
    request = RawApiLog.objects.create(
        direction=Direction.REQUEST,
        headers={"Authorization": "[REDACTED]"},
        created_at=at,
        **common,
    )
    response = RawApiLog.objects.create(
        direction=Direction.RESPONSE,
        status_code=200,
        duration_ms=40,
        payload=payload,
        created_at=at + timedelta(milliseconds=40),
        **common,
    )
    return request, response


def test_raw_log_page_compares_with_the_previous_sync_of_the_same_endpoint_and_user(
    staff_client, make_user
):
    owner, other = make_user(email="owner@example.com"), make_user(email="other@example.com")
    _old, previous = _exchange(
        user=owner, correlation_id="sync-1", at=T0, payload={"data": [{"id": 1}]}
    )
    _exchange(  # another user's call in between: never compared with
        user=other, correlation_id="sync-x", at=T0 + timedelta(minutes=1), payload={"data": []}
    )
    _exchange(  # the same sync's earlier call (a retry): not a previous sync
        user=owner, correlation_id="sync-2", at=T0 + timedelta(minutes=2), payload={"data": []}
    )
    request, response = _exchange(
        user=owner,
        correlation_id="sync-2",
        at=T0 + timedelta(minutes=3),
        payload={"data": [{"id": 1}, {"id": 2}]},
    )

    page = staff_client.get(reverse("admin:audit_rawapilog_change", args=[request.pk]))

    markup = page.content.decode()
    section = markup[markup.index('id="ft-compare"') :]
    previous_url = reverse("admin:audit_rawapilog_change", args=[previous.pk])
    assert f'href="{previous_url}"' in section
    assert '+3 lines</span> <span class="ft-diff-del">−0 lines</span>' in section
    assert '<span class="ft-diff-add">+    {</span>' in section
    # Request and response side by side; the page links to the other half, never to itself.
    assert markup.index("<h2>Request</h2>") < markup.index("<h2>Response</h2>")
    assert f'href="{reverse("admin:audit_rawapilog_change", args=[response.pk])}"' in markup
    assert f'href="{reverse("admin:audit_rawapilog_change", args=[request.pk])}"' not in markup
    assert "http://" in markup and "/accounts?client_id=team260-1</code>" in markup


def test_raw_log_page_says_when_there_is_no_earlier_call(staff_client, user):
    _request, response = _exchange(user=user, correlation_id="sync-1", at=T0, payload={})

    markup = staff_client.get(
        reverse("admin:audit_rawapilog_change", args=[response.pk])
    ).content.decode()

    assert "No earlier call of <code>GET /accounts?client_id=team260-1</code> (vbank)" in markup


def test_a_truncated_body_is_shown_reindented_with_a_note(staff_client, user):
    cut = '{"data":{"transaction":[{"transactionId":"tx-1"},{"transactionId":"tx'
    _request, response = _exchange(
        user=user,
        correlation_id="sync-1",
        at=T0,
        payload={"_truncated": True, "_original_bytes": 67008, "_text": cut},
    )

    markup = staff_client.get(
        reverse("admin:audit_rawapilog_change", args=[response.pk])
    ).content.decode()

    assert f"Cut by the audit log at {len(cut)} of 67008 bytes; shown re-indented." in markup
    assert "      {\n        &quot;transactionId&quot;: &quot;tx-1&quot;\n      }," in markup


# --- The sync timeline: pure functions --------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "step"),
    [
        ("/auth/bank-token?client_id=team260", "auth"),
        ("/account-consents/request", "consents"),
        ("/product-agreement-consents/request?client_id=x", "consents"),
        ("/accounts?client_id=team260-1", "accounts"),
        ("/accounts/acc-1", "accounts"),
        ("/accounts/acc-1/balances?client_id=x", "balances"),
        ("/accounts/acc-1/transactions?page=2", "transactions"),
        ("/products", "agreements"),
        ("/product-agreements/agr-1?client_id=x", "agreements"),
        ("/health", "other"),
    ],
)
def test_call_step_names_the_step_of_an_endpoint(endpoint, step):
    assert call_step(endpoint) == step


def _log(pk, exchange, direction, at_ms, endpoint="/accounts", status=None, duration=None):
    return SimpleNamespace(
        pk=pk,
        exchange_id=exchange,
        direction=direction,
        method="GET",
        endpoint=endpoint,
        status_code=status,
        duration_ms=duration,
        error="" if status else ("timed out" if direction == "response" else ""),
        created_at=T0 + timedelta(milliseconds=at_ms),
    )


def test_calls_pair_their_halves_and_a_repeat_after_a_failure_is_a_retry():
    rows = [
        _log(1, "e1", "request", 0),
        _log(2, "e1", "response", 30, status=503, duration=30),
        _log(3, "e2", "request", 40),
        _log(4, "e2", "response", 60, status=200, duration=20),
        _log(5, "e3", "request", 70, endpoint="/accounts/a/balances"),
        _log(6, "e3", "response", 90, endpoint="/accounts/a/balances", status=200, duration=20),
        _log(7, "e4", "request", 95),  # /accounts again after a success: not a retry
        _log(8, "e4", "response", 99, status=None),
    ]

    calls = calls_from_logs(rows)

    assert [(c.request_id, c.response_id, c.outcome, c.is_retry) for c in calls] == [
        (1, 2, "failed", False),
        (3, 4, "ok", True),
        (5, 6, "ok", False),
        (7, 8, "failed", False),
    ]
    assert step_summaries(calls)[0] == step_summaries(calls)[0].__class__(
        step="accounts", calls=3, errors=2, retries=1, span_ms=95, busy_ms=50
    )
    assert [s.step for s in step_summaries(calls)] == ["accounts", "balances"]


def test_run_timeline_svg_draws_a_bar_per_call_linked_and_escaped():
    calls = [
        BankCall("GET", "/accounts?q=<x>&y", T0, 100, 200, response_id=9),
        BankCall(
            "GET", "/accounts/a/balances", T0 + timedelta(milliseconds=100), 50, 500, is_retry=True
        ),
    ]

    svg = run_timeline_svg(
        calls=calls,
        started_at=T0,
        finished_at=T0 + timedelta(milliseconds=200),
        status="succeeded",
        link=lambda call: f"/admin/raw/{call.response_id}/" if call.response_id else None,
        width=500,
    )

    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" class="ft-timeline"')
    assert svg.count("<title>") == 3  # the run and two calls
    assert "GET /accounts?q=&lt;x&gt;&amp;y → 200 in 100 ms" in svg
    assert "→ 500 in 50 ms (retry)" in svg and 'stroke-dasharray="3 2"' in svg
    assert svg.count('<a href="/admin/raw/9/">') == 1
    # The first call spans half the plot (100 of 200 ms): the plot is 500 - 110 - 16 wide.
    assert '<rect x="110.0" y="30" width="187.0" height="12" fill="#2e7d32">' in svg
    assert ">0 ms</text>" in svg and ">200 ms</text>" in svg
    assert run_timeline_svg(calls=[], started_at=None, finished_at=None, status="queued") == ""


def test_durations_svg_scales_bars_to_the_longest_run():
    svg = durations_svg(
        [
            RunBar("#2 <new>", 0.5, 1.5, "failed", href="#run-2"),
            RunBar("#1", 0.0, 4.0, "succeeded"),
        ],
        width=370,
    )

    assert svg.count("<g><title>") == 2
    assert "#2 &lt;new&gt;: failed, queued 500 ms, ran 1500 ms" in svg
    # plot = 370 - 150 - 70 = 150 px for 4 s: 0.5 s queued = 18.75 px, then 1.5 s = 56.25 px.
    assert '<rect x="150" y="5" width="18.8" height="14" fill="#cfd8dc"/>' in svg
    assert '<rect x="168.8" y="5" width="56.2" height="14" fill="#c62828"/>' in svg
    assert '<a href="#run-2">' in svg
    assert durations_svg([]) == ""


# --- The sync timeline page -------------------------------------------------------------------


def test_timeline_page_lists_a_connections_runs_newest_first_with_their_calls(staff_client, user):
    connection = factories.make_connection(user=user)
    other = factories.make_connection(user=user, bank_code="abank")
    older = SyncRun.objects.create(
        connection=connection,
        user=user,
        status=SyncStatus.FAILED,
        error_code="bank_unavailable",
        error="VBank answered 503",
    )
    newer = SyncRun.objects.create(connection=connection, user=user, status=SyncStatus.SUCCEEDED)
    SyncRun.objects.create(connection=other, user=user, status=SyncStatus.SUCCEEDED)
    SyncRun.objects.filter(pk=older.pk).update(
        created_at=T0, started_at=T0, finished_at=T0 + timedelta(seconds=1)
    )
    SyncRun.objects.filter(pk=newer.pk).update(
        created_at=T0 + timedelta(hours=1), started_at=T0 + timedelta(hours=1)
    )
    for index, status in enumerate([503, 503, 200]):
        exchange = uuid.uuid4()
        for direction, offset in (("request", 0), ("response", 100)):
            RawApiLog.objects.create(
                user=user, bank_code="vbank", endpoint="/accounts", method="GET",
                direction=direction, status_code=status if direction == "response" else None,
                duration_ms=100 if direction == "response" else None,
                correlation_id=str(older.correlation_id), exchange_id=exchange,
                created_at=T0 + timedelta(milliseconds=200 * index + offset),
            )  # fmt: skip

    page = staff_client.get(reverse("admin:sync_syncrun_timeline", args=[connection.pk]))

    markup = page.content.decode()
    assert page.status_code == 200
    assert re.findall(r'data-run="(\d+)"', markup) == [str(newer.pk), str(older.pk)]
    older_card = markup[markup.index(f'id="run-{older.pk}"') :]
    assert 'data-calls="3"' in older_card and 'data-errors="2"' in older_card
    assert 'data-retries="2"' in older_card
    assert "<strong>bank_unavailable</strong>: VBank answered 503" in older_card
    assert "2026-12-01 12:40:05 MSK" in older_card
    assert '<tr data-step="accounts"><td>accounts</td><td>3</td>' in older_card
    assert "No bank calls were logged for this run." in markup  # the newer run


def test_timeline_page_is_for_staff_only_and_404s_an_unknown_connection(
    client, django_user_model, make_user
):
    from django.test import Client

    connection = factories.make_connection(user=make_user(email="owner@example.com"))
    url = reverse("admin:sync_syncrun_timeline", args=[connection.pk])
    staff = Client()
    staff.force_login(
        django_user_model.objects.create_superuser(email="ops@example.com", password="Ops-2026!x")
    )
    client.force_login(make_user(email="customer@example.com"))

    assert client.get(url).status_code == 302
    assert staff.get(url).status_code == 200
    unknown = reverse("admin:sync_syncrun_timeline", args=[connection.pk + 99])
    assert staff.get(unknown).status_code == 404


def test_connection_and_run_pages_link_to_the_timeline(staff_client, user):
    connection = factories.make_connection(user=user)
    run = SyncRun.objects.create(connection=connection, user=user)
    timeline = reverse("admin:sync_syncrun_timeline", args=[connection.pk])

    connection_page = staff_client.get(
        reverse("admin:banking_bankconnection_change", args=[connection.pk])
    ).content.decode()
    connections = staff_client.get(reverse("admin:banking_bankconnection_changelist"))
    run_page = staff_client.get(reverse("admin:sync_syncrun_change", args=[run.pk]))
    runs = staff_client.get(reverse("admin:sync_syncrun_changelist"))

    assert f'<a href="{timeline}">sync timeline</a>' in connection_page
    assert f'<a href="{timeline}">timeline</a>' in connections.content.decode()
    assert f'<a href="{timeline}">timeline of its runs</a>' in run_page.content.decode()
    assert f'<a href="{timeline}#run-{run.pk}">timeline</a>' in runs.content.decode()
