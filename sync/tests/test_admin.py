"""Sync run admin: progress, counts and errors; one click to every raw log of the run."""

import uuid
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from audit.models import Direction, RawApiLog
from audit.tests.factories import make_raw_log
from banking.tests import factories
from sync.models import SyncRun, SyncStatus


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(
        django_user_model.objects.create_superuser(email="ops@example.com", password="Ops-2026!x")
    )
    return client


def raw_log(correlation_id: str) -> RawApiLog:
    return make_raw_log(
        direction=Direction.REQUEST,
        correlation_id=correlation_id,
        created_at=datetime(2025, 11, 20, 10, tzinfo=UTC),
    )


def test_a_run_links_to_exactly_its_raw_logs(staff_client, user):
    connection = factories.make_connection(user=user)
    run = SyncRun.objects.create(
        connection=connection,
        user=user,
        status=SyncStatus.FAILED,
        progress=45,
        transactions_added=120,
        error_code="bank_unavailable",
        error="VBank answered 503 three times",
    )
    own_logs = [raw_log(str(run.correlation_id)), raw_log(str(run.correlation_id))]
    raw_log(str(uuid.uuid4()))  # another run's

    page = staff_client.get(reverse("admin:sync_syncrun_change", args=[run.pk]))
    html = page.content.decode()
    link = f"{reverse('admin:audit_rawapilog_changelist')}?correlation_id={run.correlation_id}"
    logs_page = staff_client.get(link)

    assert page.status_code == 200
    assert f'href="{link}"' in html
    assert "45%" in html
    assert "VBank answered 503 three times" in html
    assert "bank_unavailable" in html
    assert logs_page.status_code == 200
    assert sorted(row.pk for row in logs_page.context["cl"].result_list) == sorted(
        row.pk for row in own_logs
    )


def test_runs_filter_by_status_and_search_by_correlation_id(staff_client, user):
    connection = factories.make_connection(user=user)
    failed = SyncRun.objects.create(connection=connection, user=user, status=SyncStatus.FAILED)
    succeeded = SyncRun.objects.create(
        connection=connection, user=user, status=SyncStatus.SUCCEEDED
    )
    changelist = reverse("admin:sync_syncrun_changelist")

    by_status = staff_client.get(changelist, {"status__exact": "failed"})
    by_search = staff_client.get(changelist, {"q": str(succeeded.correlation_id)})

    assert [run.pk for run in by_status.context["cl"].result_list] == [failed.pk]
    assert [run.pk for run in by_search.context["cl"].result_list] == [succeeded.pk]
    assert list(staff_client.get(changelist, {"q": "not-a-uuid"}).context["cl"].result_list) == []
