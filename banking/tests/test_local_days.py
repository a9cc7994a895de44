"""Days and months are the user's local ones: aggregates, summaries, the feed (SQLite and PG)."""

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest

from banking.models import TransactionAggregate
from banking.services.money import money_refresh_after_sync
from banking.services.transactions import transaction_aggregates_recompute
from banking.tests.factories import make_account, make_transaction
from fintrack.core.localtime import local_date, local_day_start, user_today, zone_of

pytestmark = pytest.mark.django_db


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _set_zone(user, name: str):
    user.time_zone = name
    user.save(update_fields=["time_zone"])
    return user


def _days(user) -> list[tuple[date, Decimal, int]]:
    rows = TransactionAggregate.objects.filter(user=user).order_by("date")
    return [(r.date, r.spending, r.transaction_count) for r in rows]


def _spend(account, when: str, amount: str = "-10.00"):
    return make_transaction(
        account=account, amount=amount, booking_date=_utc(when), description="Аптека"
    )


# --- helpers -----------------------------------------------------------------------------------


def test_helpers_local_date_today_and_day_start():
    moscow = zone_of("Europe/Moscow")
    assert local_date(moscow, _utc("2025-11-30T22:30:00Z")) == date(2025, 12, 1)
    assert local_date("Asia/Novosibirsk", _utc("2025-11-30T16:59:59Z")) == date(2025, 11, 30)
    assert local_date("Asia/Novosibirsk", _utc("2025-11-30T17:00:00Z")) == date(2025, 12, 1)
    assert user_today("Europe/Moscow", now=_utc("2025-11-30T21:00:00Z")) == date(2025, 12, 1)
    assert local_day_start("Europe/Berlin", date(2025, 10, 26)) == _utc("2025-10-25T22:00:00Z")
    assert local_day_start("Europe/Berlin", date(2025, 10, 27)) == _utc("2025-10-26T23:00:00Z")
    # Unknown or empty zones fall back to the default.
    assert zone_of("") == ZoneInfo("Europe/Moscow")
    assert zone_of("Mars/Olympus") == ZoneInfo("Europe/Moscow")


# --- aggregates --------------------------------------------------------------------------------


def test_default_zone_is_moscow_and_a_late_utc_row_counts_on_the_next_local_day(user):
    assert user.time_zone == "Europe/Moscow"
    account = make_account(user=user)
    _spend(account, "2025-11-30T20:59:59Z", "-1.00")  # 23:59:59 MSK, Nov 30
    _spend(account, "2025-11-30T22:30:00Z", "-2.00")  # 01:30 MSK, Dec 1

    transaction_aggregates_recompute(user=user, since_date=None)

    assert _days(user) == [
        (date(2025, 11, 30), Decimal("1.00"), 1),
        (date(2025, 12, 1), Decimal("2.00"), 1),
    ]


def test_novosibirsk_is_seven_hours_ahead(user):
    _set_zone(user, "Asia/Novosibirsk")
    account = make_account(user=user)
    _spend(account, "2025-10-31T16:59:00Z", "-1.00")  # 23:59 Oct 31
    _spend(account, "2025-10-31T17:00:00Z", "-2.00")  # 00:00 Nov 1

    transaction_aggregates_recompute(user=user, since_date=None)

    assert _days(user) == [
        (date(2025, 10, 31), Decimal("1.00"), 1),
        (date(2025, 11, 1), Decimal("2.00"), 1),
    ]


def test_dst_zone_berlin_around_the_2025_10_26_change(user):
    # 2025-10-26 01:00Z: CEST (UTC+2) becomes CET (UTC+1). A fixed offset gets one edge wrong.
    _set_zone(user, "Europe/Berlin")
    account = make_account(user=user)
    _spend(account, "2025-10-25T21:59:00Z", "-1.00")  # 23:59 CEST Oct 25
    _spend(account, "2025-10-25T22:00:00Z", "-2.00")  # 00:00 CEST Oct 26
    _spend(account, "2025-10-26T00:30:00Z", "-4.00")  # 02:30 CEST Oct 26 (first 02:30)
    _spend(account, "2025-10-26T01:30:00Z", "-8.00")  # 02:30 CET Oct 26 (second 02:30)
    _spend(account, "2025-10-26T22:59:00Z", "-16.00")  # 23:59 CET Oct 26
    _spend(account, "2025-10-26T23:00:00Z", "-32.00")  # 00:00 CET Oct 27
    _spend(account, "2025-03-29T22:59:00Z", "-64.00")  # 23:59 CET Mar 29
    _spend(account, "2025-03-29T23:00:00Z", "-128.00")  # 00:00 CET Mar 30 (spring forward)

    transaction_aggregates_recompute(user=user, since_date=None)

    assert _days(user) == [
        (date(2025, 3, 29), Decimal("64.00"), 1),
        (date(2025, 3, 30), Decimal("128.00"), 1),
        (date(2025, 10, 25), Decimal("1.00"), 1),
        (date(2025, 10, 26), Decimal("30.00"), 4),
        (date(2025, 10, 27), Decimal("32.00"), 1),
    ]

    # A rebuild from the local day 2025-10-26 touches exactly that day onwards.
    _spend(account, "2025-10-25T22:00:00Z", "-100.00")  # 00:00 Oct 26 local, Oct 25 in UTC
    transaction_aggregates_recompute(user=user, since_date=date(2025, 10, 26))

    assert _days(user)[2:] == [
        (date(2025, 10, 25), Decimal("1.00"), 1),
        (date(2025, 10, 26), Decimal("130.00"), 5),
        (date(2025, 10, 27), Decimal("32.00"), 1),
    ]


def test_sync_refresh_with_a_utc_since_date_is_right_west_of_utc(user):
    # New York: a row at 02:00Z on Nov 10 is Nov 9 locally; the sync passes since=Nov 10 (UTC).
    _set_zone(user, "America/New_York")
    account = make_account(user=user)
    _spend(account, "2025-11-09T15:00:00Z", "-1.00")
    money_refresh_after_sync(user=user, since_date=None)
    _spend(account, "2025-11-10T02:00:00Z", "-2.00")

    money_refresh_after_sync(user=user, since_date=date(2025, 11, 10))

    assert _days(user) == [(date(2025, 11, 9), Decimal("3.00"), 2)]


# --- APIs --------------------------------------------------------------------------------------


def test_feed_filters_by_local_day_and_shows_local_date(auth_client):
    account = make_account(user=auth_client.user)
    late = _spend(account, "2025-11-30T22:30:00Z")  # Dec 1 in Moscow
    _spend(account, "2025-11-30T12:00:00Z")  # Nov 30

    body = auth_client.get("/api/transactions?from=2025-12-01&to=2025-12-01").json()

    assert [(item["id"], item["local_date"]) for item in body["results"]] == [
        (late.id, "2025-12-01")
    ]
    detail = auth_client.get(f"/api/transactions/{late.id}").json()
    assert detail["local_date"] == "2025-12-01"


def test_summary_days_and_months_are_local_and_partial_months_are_not_averaged(auth_client):
    user = auth_client.user
    account = make_account(user=user)
    # History starts mid-September (partial), October and November are whole, December is the
    # current month (partial). The 22:30Z rows belong to the next local day and month.
    _spend(account, "2025-09-20T12:00:00Z", "-500.00")
    _spend(account, "2025-09-30T22:30:00Z", "-100.00")  # Oct 1 MSK
    _spend(account, "2025-10-15T12:00:00Z", "-200.00")
    _spend(account, "2025-10-31T22:30:00Z", "-300.00")  # Nov 1 MSK
    _spend(account, "2025-11-30T22:30:00Z", "-7.00")  # Dec 1 MSK
    money_refresh_after_sync(user=user, since_date=None)
    now = _utc("2025-12-02T09:00:00Z")

    from unittest import mock

    with mock.patch("django.utils.timezone.now", return_value=now):
        body = auth_client.get("/api/transactions/summary?from=2025-09-01&to=2025-12-02").json()

    assert body["time_zone"] == "Europe/Moscow"
    (rub,) = body["currencies"]
    assert [(d["date"], d["spending"]) for d in rub["by_day"]] == [
        ("2025-09-20", "500.00"),
        ("2025-10-01", "100.00"),
        ("2025-10-15", "200.00"),
        ("2025-11-01", "300.00"),
        ("2025-12-01", "7.00"),
    ]
    assert [
        (m["month"], m["spending"], m["days_with_data"], m["complete"]) for m in rub["by_month"]
    ] == [
        ("2025-09", "500.00", 1, False),  # first month of history
        ("2025-10", "300.00", 2, True),
        ("2025-11", "300.00", 1, True),
        ("2025-12", "7.00", 1, False),  # the current local month
    ]
    assert rub["monthly_average"] == {
        "months": 2,
        "currency": "RUB",
        "income": "0.00",
        "spending": "300.00",
        "net": "-300.00",
    }


def test_summary_period_ends_on_the_local_today(auth_client):
    account = make_account(user=auth_client.user)
    _spend(account, "2025-11-30T22:30:00Z", "-7.00")  # Dec 1 MSK
    money_refresh_after_sync(user=auth_client.user, since_date=None)
    now = _utc("2025-11-30T23:00:00Z")  # still Nov 30 in UTC, Dec 1 in Moscow

    from unittest import mock

    with mock.patch("django.utils.timezone.now", return_value=now):
        body = auth_client.get("/api/transactions/summary?period=month").json()

    assert (body["from"], body["to"]) == ("2025-12-01", "2025-12-01")
    assert [(c["currency"], c["spending"]) for c in body["currencies"]] == [("RUB", "7.00")]
    assert body["currencies"][0]["monthly_average"]["months"] == 0
    assert body["currencies"][0]["monthly_average"]["spending"] is None


def test_range_cut_months_are_not_complete(auth_client):
    account = make_account(user=auth_client.user)
    for day in range(1, 29):
        _spend(account, f"2025-10-{day:02d}T10:00:00Z")
    _spend(account, "2025-09-01T10:00:00Z")
    money_refresh_after_sync(user=auth_client.user, since_date=None)

    body = auth_client.get("/api/transactions/summary?from=2025-10-05&to=2025-10-31").json()

    (month,) = body["currencies"][0]["by_month"]
    assert (month["month"], month["complete"], month["days_with_data"]) == ("2025-10", False, 24)
    assert body["currencies"][0]["monthly_average"]["months"] == 0


def test_summary_query_count_stays_flat(auth_client, django_assert_max_num_queries):
    account = make_account(user=auth_client.user)
    start = date(2025, 6, 1)
    for offset in range(0, 120, 3):
        _spend(account, f"{start + timedelta(days=offset)}T21:30:00Z")
    money_refresh_after_sync(user=auth_client.user, since_date=None)

    with django_assert_max_num_queries(4):
        response = auth_client.get("/api/transactions/summary?from=2025-06-01&to=2025-10-01")
    assert response.status_code == 200


# --- sandbox: client 2 (Novosibirsk) against the sandbox's own truth ----------------------------


@pytest.mark.django_db(transaction=True)
def test_sandbox_client_2_complete_local_months_equal_the_truth(sandbox_banks, make_user):
    from consents import services as consent_services
    from consents.models import ConsentKind, ConsentStatus
    from sandbox.money_truth import client_money_truth
    from sync.models import SyncRun, SyncStatus, SyncTrigger
    from sync.services import sync_run_execute
    from users.models import User
    from users.services import token_pair_for

    user = make_user(email="client2@example.com", client_id="team260-2")
    User.objects.filter(pk=user.pk).update(time_zone="Asia/Novosibirsk")
    user.refresh_from_db()
    truth = client_money_truth("team260-2")
    assert truth["timezone"] == "Asia/Novosibirsk"

    from banking.services.connections import connection_get_or_create

    for bank_code in truth["banks"]:
        for kind in (ConsentKind.ACCOUNTS, ConsentKind.PRODUCTS):
            consent = consent_services.consent_ensure(user=user, bank_code=bank_code, kind=kind)
            if consent.status == ConsentStatus.PENDING:
                consent = consent_services.consent_approve_demo(consent=consent)
        connection = connection_get_or_create(user=user, bank_code=bank_code)
        run = SyncRun.objects.create(
            connection=connection, user_id=user.pk, trigger=SyncTrigger.USER
        )
        sync_run_execute(sync_run_id=run.pk)
        run.refresh_from_db()
        assert run.status == SyncStatus.SUCCEEDED, run.error

    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user)['access']}")
    months = sorted(truth["monthly"])
    body = client.get(f"/api/transactions/summary?from={months[0]}-01&to={truth['today']}").json()
    assert body["to"] == truth["today"]
    (rub,) = [c for c in body["currencies"] if c["currency"] == "RUB"]
    ours = {m["month"]: m for m in rub["by_month"]}
    complete = [m for m in months if truth["monthly"][m]["complete"]]
    assert complete, "the sandbox history spans whole months"
    for month in months:
        expected = truth["monthly"][month]
        assert ours[month]["complete"] == expected["complete"], month
        if expected["complete"]:
            assert (ours[month]["income"], ours[month]["spending"]) == (
                expected["income"],
                expected["spending"],
            ), month
    n = Decimal(len(complete))
    assert Decimal(rub["monthly_average"]["spending"]) == (
        sum(Decimal(truth["monthly"][m]["spending"]) for m in complete) / n
    ).quantize(Decimal("0.01"), ROUND_HALF_UP)
