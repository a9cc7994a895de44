"""Analytics snapshot admin: the breakdown of every figure, pretty and escaped; lists stay light."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from analytics.models import AnalyticsSnapshot


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(
        django_user_model.objects.create_superuser(email="ops@example.com", password="Ops-2026!x")
    )
    return client


def test_snapshot_page_shows_the_breakdown_escaped(staff_client, user):
    snapshot = AnalyticsSnapshot.objects.create(
        user=user,
        sts_amount=Decimal("12500.00"),
        breakdown={"reserve": {"amount": "5000.00", "why": "floor <5000>"}},
    )

    html = staff_client.get(
        reverse("admin:analytics_analyticssnapshot_change", args=[snapshot.pk])
    ).content.decode()

    assert "12500.00" in html
    assert "&quot;why&quot;: &quot;floor &lt;5000&gt;&quot;" in html
    assert "floor <5000>" not in html


def test_snapshot_changelist_leaves_the_breakdown_out(staff_client, user):
    AnalyticsSnapshot.objects.create(user=user, breakdown={"terms": ["x"] * 100})

    with CaptureQueriesContext(connection) as queries:
        page = staff_client.get(reverse("admin:analytics_analyticssnapshot_changelist"))

    assert page.status_code == 200
    sqls = [q["sql"] for q in queries.captured_queries if '"analytics_snapshots"' in q["sql"]]
    assert sqls
    assert all('"analytics_snapshots"."breakdown"' not in sql for sql in sqls)
