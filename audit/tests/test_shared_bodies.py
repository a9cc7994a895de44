"""Response bodies stored once: a page the bank sends again unchanged costs a metadata row only,
and the admin and the staff API still show it, with the call that stored it first."""

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit import capture
from audit.capture import RawLogBuffer
from audit.models import Direction, RawApiBody, RawApiLog
from audit.services import raw_logs_purge_detailed
from banking.clients import BankExchange
from fintrack.core.correlation import correlation_scope
from users.services import token_pair_for

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZWFtMjYwIn0.SIGNATURE-ONE"
SECRET = "team-secret-for-bodies"


def page_exchange(*, account="acc-1", page=1, rows=3, token=None, status=200) -> BankExchange:
    """A transactions page as the bank sends it: its very text, parsed once."""
    body = {
        "data": {
            "transaction": [{"transactionId": f"tx-{n}", "amount": "10.50"} for n in range(rows)]
        },
        "meta": {"totalRecords": rows},
    }
    if token:
        body["access_token"] = token
    text = json.dumps(body, ensure_ascii=False)
    return BankExchange(
        bank_code="vbank",
        method="GET",
        path=f"/accounts/{account}/transactions",
        query={"page": page, "limit": 100},
        request_headers={"Authorization": f"Bearer {TOKEN}"},
        request_json=None,
        status_code=status,
        response_headers={"Content-Type": "application/json"},
        response_text=text,
        response_json=json.loads(text),
        response_is_json=True,
        duration_ms=12,
        started_at=timezone.now(),
    )


def sync_once(user, *exchanges, correlation_id="sync-1", secrets=(SECRET,)) -> None:
    buffer = RawLogBuffer(user=user, secrets=secrets)
    with correlation_scope(correlation_id):
        for exchange in exchanges:
            buffer.hook(exchange)
    buffer.close()


def responses(**filters):
    return list(
        RawApiLog.objects.filter(direction=Direction.RESPONSE, **filters)
        .select_related("body")
        .order_by("created_at", "id")
    )


@pytest.mark.django_db
def test_an_unchanged_page_is_stored_once_and_every_call_keeps_its_row(user):
    sync_once(user, page_exchange(), correlation_id="sync-1")
    sync_once(user, page_exchange(), correlation_id="sync-2")
    sync_once(user, page_exchange(), correlation_id="sync-3")

    rows = responses()
    assert [row.correlation_id for row in rows] == ["sync-1", "sync-2", "sync-3"]
    assert {(row.status_code, row.duration_ms, row.user_id) for row in rows} == {(200, 12, user.pk)}
    assert len({row.exchange_id for row in rows}) == 3
    assert RawApiBody.objects.count() == 1
    body = RawApiBody.objects.get()
    assert {row.body_id for row in rows} == {body.pk}
    assert all(row.payload is None for row in rows)  # not stored again in the row
    assert all(row.body_payload == page_exchange().response_json for row in rows)
    assert body.first_exchange_id == rows[0].exchange_id
    assert body.first_seen_at == rows[0].created_at
    assert body.size_bytes == len(page_exchange().response_text.encode())
    assert body.user_id == user.pk
    # Requests keep their (small) bodies and headers in their own rows.
    requests = RawApiLog.objects.filter(direction=Direction.REQUEST)
    assert requests.count() == 3 and not requests.filter(body__isnull=False).exists()


@pytest.mark.django_db
def test_another_endpoint_user_or_content_is_another_body(user, make_user):
    other_user = make_user(email="boris.bodies@example.com")
    sync_once(user, page_exchange(), page_exchange(account="acc-2"), page_exchange(page=2))
    sync_once(other_user, page_exchange())
    sync_once(user, page_exchange(rows=4))  # a new transaction: the page changed

    assert RawApiBody.objects.count() == 5
    assert RawApiBody.objects.filter(user=other_user).count() == 1
    assert len({row.body_id for row in responses()}) == 5


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the `json` type is PostgreSQL's")
@pytest.mark.django_db
def test_a_shared_body_is_the_very_text_the_bank_sent(user):
    exchange = page_exchange()
    sync_once(user, exchange)

    with connection.cursor() as cursor:
        cursor.execute("SELECT payload::text FROM raw_api_bodies")
        assert cursor.fetchone()[0] == exchange.response_text


@pytest.mark.django_db
def test_bodies_are_redacted_before_they_are_hashed(user):
    """Two answers differing only in a secret are one body, and the body holds no secret."""
    sync_once(user, page_exchange(token=TOKEN))
    sync_once(user, page_exchange(token=TOKEN.replace("ONE", "TWO")))

    body = RawApiBody.objects.get()
    assert body.payload["access_token"] == "[REDACTED]"
    dump = json.dumps(list(RawApiBody.objects.values()), default=str)
    assert TOKEN.split(".")[2] not in dump and "SIGNATURE-TWO" not in dump
    assert responses()[0].body_id == responses()[1].body_id


@pytest.mark.django_db
def test_a_repeat_flush_looks_bodies_up_once_and_sends_no_body_text(user):
    sync_once(user, *[page_exchange(account=f"acc-{n}") for n in range(5)])
    buffer = RawLogBuffer(user=user, secrets=[SECRET])
    for n in range(5):
        buffer.hook(page_exchange(account=f"acc-{n}"))

    with CaptureQueriesContext(connection) as captured:
        buffer.flush()

    statements = [
        q["sql"]
        for q in captured.captured_queries
        if not q["sql"].startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"))
    ]
    assert len(statements) == 2  # one lookup of the 5 digests, one write of the 10 rows
    assert "raw_api_bodies" in statements[0] and statements[0].startswith("SELECT")
    assert "transactionId" not in " ".join(statements)
    assert RawApiBody.objects.count() == 5
    assert RawApiLog.objects.count() == 20


@pytest.mark.django_db
def test_last_seen_moves_forward_once_a_day_at_most(user):
    sync_once(user, page_exchange())
    body = RawApiBody.objects.get()
    hour_ago = timezone.now() - timedelta(hours=1)
    RawApiBody.objects.update(last_seen_at=hour_ago)

    sync_once(user, page_exchange())
    body.refresh_from_db()
    assert body.last_seen_at == hour_ago  # seen within the day: no UPDATE

    RawApiBody.objects.update(last_seen_at=timezone.now() - timedelta(days=2))
    sync_once(user, page_exchange())
    body.refresh_from_db()
    latest = responses()[-1]
    assert body.last_seen_at == latest.created_at


@pytest.mark.django_db
def test_purge_removes_the_bodies_no_kept_log_uses(user):
    sync_once(user, page_exchange(account="old"), page_exchange(account="both"))
    long_ago = timezone.now() - timedelta(days=100)
    RawApiLog.objects.update(created_at=long_ago)
    RawApiBody.objects.update(first_seen_at=long_ago, last_seen_at=long_ago)
    sync_once(user, page_exchange(account="both"))  # seen again today: a kept log uses it
    both = RawApiBody.objects.get(
        first_exchange_id__in=RawApiLog.objects.filter(
            endpoint__startswith="/accounts/both"
        ).values("exchange_id")
    )

    result = raw_logs_purge_detailed(older_than_days=90, batch_size=10)

    assert result.rows == 4  # the first sync's two exchanges
    assert result.bodies_deleted == 1
    assert list(RawApiBody.objects.values_list("pk", flat=True)) == [both.pk]
    kept = responses()
    assert len(kept) == 1 and kept[0].body_payload == page_exchange(account="both").response_json


@pytest.mark.django_db
def test_deleting_a_user_deletes_their_bodies(user, make_user):
    other_user = make_user(email="boris.bodies@example.com")
    sync_once(user, page_exchange())
    sync_once(other_user, page_exchange())
    RawApiLog.objects.filter(user=user).delete()

    user.delete()

    assert list(RawApiBody.objects.values_list("user_id", flat=True)) == [other_user.pk]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_two_writers_storing_the_same_new_body_at_once_store_it_once(user, monkeypatch):
    """Both look the body up (absent), then COPY it at the same moment: the unique digest lets
    one win; the other's COPY fails once the winner commits, and its whole write is done again
    (bodies by INSERT … ON CONFLICT DO NOTHING), pointing at the winner's row."""
    both_looked = threading.Barrier(2, timeout=10)
    original = capture.copy_rows
    slow_writes = []

    def copy_together(model, columns, rows, **kwargs):
        if model is RawApiBody:
            both_looked.wait()
        original(model, columns, rows, **kwargs)

    def insert_again(bodies):
        slow_writes.append(len(bodies))
        original_insert(bodies)

    original_insert = capture._bodies_insert_postgres
    monkeypatch.setattr(capture, "copy_rows", copy_together)
    monkeypatch.setattr(capture, "_bodies_insert_postgres", insert_again)
    errors = []

    def writer(correlation_id: str) -> None:
        try:
            sync_once(user, page_exchange(), correlation_id=correlation_id)
        except Exception as exc:  # raised in the test thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(f"sync-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    rows = responses()
    assert sorted(row.correlation_id for row in rows) == ["sync-0", "sync-1"]
    assert RawApiBody.objects.count() == 1
    assert {row.body_id for row in rows} == {RawApiBody.objects.get().pk}
    # The loser's second write found the winner's body: nothing left to insert.
    assert slow_writes == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the bodies' COPY: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_body_stored_between_the_lookup_and_the_copy_fails_nothing(user, monkeypatch):
    """Another writer commits the very body after this one looked it up: the COPY meets the
    unique digest, and the write is done again, each row once, the body stored once."""
    other = page_exchange()
    original = capture.copy_rows
    interfered = []

    def copy_after_another_writer(model, columns, rows, **kwargs):
        if model is RawApiBody and not interfered:
            interfered.append(True)
            thread = threading.Thread(target=another_writer)
            thread.start()
            thread.join(timeout=30)
        original(model, columns, rows, **kwargs)

    def another_writer() -> None:
        try:
            sync_once(user, other, correlation_id="the-other-one")
        finally:
            connection.close()

    monkeypatch.setattr(capture, "copy_rows", copy_after_another_writer)
    sync_once(user, page_exchange(), page_exchange(account="acc-2"), correlation_id="this-one")

    rows = responses()
    assert sorted(row.correlation_id for row in rows) == ["the-other-one", "this-one", "this-one"]
    assert RawApiLog.objects.count() == 6  # three exchanges, each a request and a response
    assert RawApiBody.objects.count() == 2
    mine = [row for row in rows if row.endpoint.startswith("/accounts/acc-1/")]
    assert len({row.body_id for row in mine}) == 1
    assert all(row.body_payload == other.response_json for row in mine)


# --- Shown as before: the staff API and the admin ---------------------------------------------


@pytest.fixture
def staff_api(api_client, make_user):
    staff = make_user(email="ops.bodies@example.com", is_staff=True)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(staff)['access']}")
    return api_client


@pytest.mark.django_db
def test_the_api_shows_every_shared_body_and_the_call_that_stored_it(
    staff_api, user, django_assert_max_num_queries
):
    for number in range(3):
        sync_once(user, page_exchange(), correlation_id=f"sync-{number}")
    first, *later = responses()

    with django_assert_max_num_queries(3):  # user, the page (bodies joined), the "same as"
        response = staff_api.get("/api/admin/raw-logs", {"direction": "response"})

    assert response.status_code == 200, response.content
    results = {row["id"]: row for row in response.json()["results"]}
    assert set(results) == {first.pk, *(row.pk for row in later)}
    for row in results.values():
        assert row["payload"] == page_exchange().response_json
    assert results[first.pk]["same_as"] is None
    for row in later:
        assert results[row.pk]["same_as"] == {
            "id": first.pk,
            "exchange_id": str(first.exchange_id),
            "created_at": first.created_at.isoformat().replace("+00:00", "Z"),
        }


@pytest.mark.django_db
def test_the_api_says_when_the_first_call_is_no_longer_kept(staff_api, user):
    sync_once(user, page_exchange(), correlation_id="sync-1")
    sync_once(user, page_exchange(), correlation_id="sync-2")
    first, second = responses()
    RawApiLog.objects.filter(exchange_id=first.exchange_id).delete()

    rows = staff_api.get("/api/admin/raw-logs", {"direction": "response"}).json()["results"]

    assert [row["id"] for row in rows] == [second.pk]
    assert rows[0]["same_as"]["id"] is None
    assert rows[0]["same_as"]["exchange_id"] == str(first.exchange_id)
    assert rows[0]["payload"] == page_exchange().response_json


@pytest.mark.django_db
def test_the_admin_shows_the_body_and_links_the_call_that_stored_it(
    client, django_user_model, user
):
    client.force_login(
        django_user_model.objects.create_superuser(email="su@example.com", password="Su-2026!x")
    )
    sync_once(user, page_exchange(), correlation_id="sync-1")
    sync_once(user, page_exchange(), correlation_id="sync-2")
    first, second = responses()

    page = client.get(reverse("admin:audit_rawapilog_change", args=[second.pk]))
    html = page.content.decode()

    assert page.status_code == 200
    assert "tx-2" in html  # the body is shown, from the shared row
    first_url = reverse("admin:audit_rawapilog_change", args=[first.pk])
    assert f'same as <a href="{first_url}">response #{first.pk}</a>' in html
    assert "The two response bodies are identical." in html  # the diff with the previous sync

    first_page = client.get(first_url).content.decode()
    assert "stored with this row" in first_page
