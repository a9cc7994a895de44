"""The dashboard's one read (analytics.selectors.dashboard_rows) and the recomputation marker it
reads (analytics.models.RecomputeRequest).

On PostgreSQL the read is the function of migration analytics 0005; the query it freezes is
also sent as text there, and the two must answer alike for every shape of data: a change to one
without the other fails here.
"""

import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection, connections
from django.utils import timezone

from analytics import selectors, services
from analytics.models import RecomputeRequest
from analytics.tests.factories import build_household
from banking.models import ConnectionStatus
from banking.tests.factories import make_connection
from consents.models import Consent, ConsentKind, ConsentStatus

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the function is PostgreSQL's"
)


def _rows(user, *, inline: bool) -> list[tuple]:
    sql, params = selectors._dashboard_statement(
        user_id=user.pk, marker_since=services.recompute_marker_live_since(), inline=inline
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _consent(user, bank_code: str, kind: str, status: str, *, days: int) -> None:
    Consent.objects.create(
        user=user,
        bank_code=bank_code,
        kind=kind,
        status=status,
        bank_consent_id=f"{bank_code}-{kind}-{status}",
        expires_at=timezone.now() + timedelta(days=days),
    )


@on_postgresql
@pytest.mark.django_db
def test_the_function_answers_as_the_query_for_every_shape_of_data(make_user):
    empty = make_user()  # no snapshot, no connection
    assert _rows(empty, inline=False) == _rows(empty, inline=True)
    assert _rows(empty, inline=False) == [(None,) * 13 + (False, None, False, None, False)]

    user = make_user()
    make_connection(user=user, bank_code="vbank")
    make_connection(user=user, bank_code="abank", status=ConnectionStatus.CONSENT_REQUIRED)
    _consent(user, "vbank", ConsentKind.ACCOUNTS, ConsentStatus.AUTHORIZED, days=40)
    _consent(user, "vbank", ConsentKind.PRODUCTS, ConsentStatus.REVOKED, days=40)
    _consent(user, "abank", ConsentKind.PRODUCTS, ConsentStatus.AUTHORIZED, days=2)
    _consent(make_user(), "vbank", ConsentKind.ACCOUNTS, ConsentStatus.AUTHORIZED, days=9)
    no_snapshot = _rows(user, inline=False)
    assert no_snapshot == _rows(user, inline=True)
    assert [row[6] for row in no_snapshot] == ["abank", "vbank"]

    build_household(user)
    services.analytics_recompute(user=user)
    newest = services.analytics_recompute(user=user)
    with mock.patch("analytics.tasks.recompute_user.apply_async"):
        services.analytics_recompute_request(user_id=user.pk)
    rows = _rows(user, inline=False)
    assert rows == _rows(user, inline=True)
    assert {row[0] for row in rows} == {newest.pk}
    assert [(row[13], row[15], row[17]) for row in rows] == [
        (False, True, True),  # abank: products authorised only
        (True, False, True),  # vbank: accounts authorised, products revoked
    ]


@pytest.mark.django_db
def test_the_read_says_whether_a_live_marker_is_set(user):
    assert selectors.dashboard_rows(user=user, marker_since=timezone.now())[2] is False
    with mock.patch("analytics.tasks.recompute_user.apply_async") as apply_async:
        assert services.analytics_recompute_request(user_id=user.pk) is True
    assert apply_async.call_count == 1
    live_since = services.recompute_marker_live_since()
    assert selectors.dashboard_rows(user=user, marker_since=live_since)[2] is True
    assert services.recompute_scheduled(user_id=user.pk) is True
    services.recompute_marker_clear(user_id=user.pk)
    assert selectors.dashboard_rows(user=user, marker_since=live_since)[2] is False


@pytest.mark.django_db
def test_a_marker_past_its_lifetime_counts_as_gone_and_is_replaced(user):
    lost = timezone.now() - timedelta(seconds=services.RECOMPUTE_MARKER_TTL_SECONDS + 5)
    RecomputeRequest.objects.create(user=user, requested_at=lost)  # its task was lost
    assert services.recompute_scheduled(user_id=user.pk) is False
    with mock.patch("analytics.tasks.recompute_user.apply_async") as apply_async:
        services.analytics_recompute_request(user_id=user.pk)
        services.analytics_recompute_request(user_id=user.pk)
    assert apply_async.call_count == 1
    marker = RecomputeRequest.objects.get(user=user)
    assert marker.requested_at > lost + timedelta(seconds=services.RECOMPUTE_MARKER_TTL_SECONDS)
    assert services.recompute_scheduled(user_id=user.pk) is True


@pytest.mark.skipif(connection.vendor != "postgresql", reason="threads get connections on PG")
@pytest.mark.django_db(transaction=True)
def test_of_callers_at_once_exactly_one_schedules(user):
    """Eight threads, each on its own PostgreSQL connection, request together; the marker's
    upsert lets one of them send the task."""
    callers = 8
    barrier = threading.Barrier(callers)
    sent: list[int] = []
    answers: list[bool] = []
    lock = threading.Lock()

    def fake_send(*args, **kwargs):
        with lock:
            sent.append(kwargs["args"][0])

    def caller() -> None:
        try:
            barrier.wait(timeout=10)
            answer = services.analytics_recompute_request(user_id=user.pk)
            with lock:
                answers.append(answer)
        finally:
            connections.close_all()

    with mock.patch("analytics.tasks.recompute_user.apply_async", side_effect=fake_send):
        threads = [threading.Thread(target=caller) for _ in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert answers == [True] * callers
    assert sent == [user.pk]
    assert RecomputeRequest.objects.filter(user=user).count() == 1
