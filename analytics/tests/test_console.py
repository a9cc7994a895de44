"""The staff "Financial picture" page without a browser: who may open it, the figures it shows
for a household worked out by hand, and that every link opens the admin rows behind a figure."""

import html
import re
from datetime import UTC, date, datetime
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest

from analytics import selectors, services
from analytics.console import AdminLinks, local_time
from analytics.tests.factories import build_household
from banking.models import BalanceSnapshot

pytestmark = pytest.mark.django_db

TODAY = date(2026, 6, 10)
MOSCOW = ZoneInfo("Europe/Moscow")
NBSP = "\u00a0"


def _url(user) -> str:
    return f"/admin/users/user/{user.pk}/financial-picture/"


@pytest.fixture
def staff_client(client, make_user):
    admin = make_user(email="judge@example.com", is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


@pytest.fixture
def household(user):
    accounts = build_household(user)
    services.analytics_recompute(user=user, today=TODAY)
    return accounts


def _hrefs(content: str) -> list[str]:
    return sorted({html.unescape(h) for h in re.findall(r'href="(/admin/[^"]*)"', content)})


# --- Access -------------------------------------------------------------------------------------


def test_a_user_who_is_not_staff_is_sent_to_the_admin_login(client, user, make_user):
    client.force_login(make_user(email="someone@example.com"))
    response = client.get(_url(user))
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_staff_without_the_view_permission_on_users_is_refused(client, user, make_user):
    client.force_login(make_user(email="clerk@example.com", is_staff=True))
    assert client.get(_url(user)).status_code == 403


def test_an_unknown_user_is_not_found(staff_client):
    assert staff_client.get("/admin/users/user/999999/financial-picture/").status_code == 404


def test_a_user_without_a_snapshot_gets_the_message_and_no_chart(staff_client, user):
    response = staff_client.get(_url(user))
    assert response.status_code == 200
    content = response.content.decode()
    assert "No analytics snapshot yet for this user" in content
    assert 'class="chart' not in content


def test_a_snapshot_without_every_section_is_named_not_drawn(staff_client, user):
    from analytics.models import AnalyticsSnapshot

    snapshot = AnalyticsSnapshot.objects.create(user=user, breakdown={"state": "ready", "sts": {}})
    content = staff_client.get(_url(user)).content.decode()
    assert (
        f'The latest snapshot (<a href="/admin/analytics/analyticssnapshot/{snapshot.pk}/change/">'
        in content
    )
    assert 'class="chart' not in content


def test_the_user_pages_link_to_the_picture(staff_client, user):
    change = staff_client.get(f"/admin/users/user/{user.pk}/change/").content.decode()
    listing = staff_client.get("/admin/users/user/").content.decode()
    assert f'href="{_url(user)}"' in change
    assert f'href="{_url(user)}"' in listing


# --- Figures ------------------------------------------------------------------------------------


def test_the_page_shows_the_household_figures(staff_client, user, household):
    # test_services works these out: spendable 50000, rent 20000 on Jun 15 before the salary on
    # Jun 25 (H = 15), reserve 10 % of 55000 = 5500, low point 30000, STS 24500, 1633.33 a day;
    # the loan account owes 200000; the savings account holds 100000.
    content = staff_client.get(_url(user)).content.decode()

    def figure(name: str) -> str:
        match = re.search(rf'data-figure="{name}">([^<]*)<', content)
        assert match, name
        return match.group(1)

    assert figure("sts-period") == f"24{NBSP}500.00{NBSP}₽"
    assert figure("sts-daily") == f"1{NBSP}633.33{NBSP}₽"
    assert figure("next-payment-amount") == f"20{NBSP}000.00{NBSP}₽"
    assert figure("next-payment-date") == "2026-06-15"
    assert figure("total-debt") == f"200{NBSP}000.00{NBSP}₽"
    assert figure("savings-total") == f"100{NBSP}000.00{NBSP}₽"
    # The waterfall's terms, in order, as its bars' tooltips read them.
    tooltips = re.findall(
        r'<g class="waterfall-step">(?:<a href="[^"]*">|<g>)<title>([^<]*)</title>', content
    )
    assert [t.split(" — ")[0] for t in tooltips] == [
        f"vbank Main: +50{NBSP}000.00{NBSP}₽",
        f"Spendable balance: 50{NBSP}000.00{NBSP}₽",
        f"🏠 ЖКХ/Аренда: −20{NBSP}000.00{NBSP}₽",
        f"Everyday spending: 0.00{NBSP}₽",
        f"Low point: 30{NBSP}000.00{NBSP}₽",
        f"Reserve: −5{NBSP}500.00{NBSP}₽",
        f"Save-to-Spend: 24{NBSP}500.00{NBSP}₽",
    ]
    for chart in ("chart-forecast", "chart-sts", "chart-health", "chart-debts", "chart-categories"):
        assert f'id="{chart}"' in content


def test_times_are_the_users_local_ones_with_seconds_and_zone():
    moment = datetime(2026, 12, 1, 10, 28, 59, tzinfo=UTC)
    assert local_time(moment, MOSCOW) == "2026-12-01 13:28:59 MSK (UTC+03:00)"
    assert local_time("2026-12-01T10:28:59+00:00", ZoneInfo("Asia/Novosibirsk")) == (
        "2026-12-01 17:28:59 +07 (UTC+07:00)"
    )
    assert local_time(None, MOSCOW) == "—"


# --- Links --------------------------------------------------------------------------------------


def test_every_admin_link_on_the_page_opens(staff_client, user, household):
    hrefs = _hrefs(staff_client.get(_url(user)).content.decode())
    assert len(hrefs) > 20
    broken = {}
    for href in hrefs:
        response = staff_client.get(href)
        # A lookup the admin refuses answers 400; a malformed one redirects to ?e=1.
        if response.status_code != 200:
            broken[href] = response.status_code
    assert broken == {}


def _result_rows(staff_client, url: str) -> list:
    response = staff_client.get(url)
    assert response.status_code == 200, url
    return list(response.context["cl"].result_list)


def test_a_day_of_the_history_lists_that_local_days_transactions(staff_client, user, household):
    links = AdminLinks(user_id=user.pk, zone=MOSCOW)
    url = links.transactions_between(date(2026, 6, 3), date(2026, 6, 3))
    content = staff_client.get(_url(user)).content.decode()
    assert html.escape(url) in content
    rows = _result_rows(staff_client, url)
    # One loan part (3000) was debited on Jun 3.
    assert [(r.amount, r.description) for r in rows] == [
        (D("-3000.00"), "Платеж по кредиту №agr-77")
    ]


def test_a_category_bar_lists_the_debits_its_aggregate_sums(staff_client, user, household):
    links = AdminLinks(user_id=user.pk, zone=MOSCOW)
    utilities = next(
        r
        for r in selectors.category_spending_list(
            user=user, since=date(2026, 5, 1), until=date(2026, 5, 31)
        )
        if r["category__code"] == "utilities"
    )
    url = links.spending_of_category(utilities["category_id"], date(2026, 5, 1), date(2026, 5, 31))
    content = staff_client.get(_url(user)).content.decode()
    assert html.escape(url) in content
    rows = _result_rows(staff_client, url)
    assert [(r.amount, r.booking_date.date()) for r in rows] == [
        (D("-20000.00"), date(2026, 5, 15))
    ]
    assert sum(-r.amount for r in rows) == utilities["total"]


def test_the_next_payment_and_the_loan_link_to_their_rows(staff_client, user, household):
    links = AdminLinks(user_id=user.pk, zone=MOSCOW)
    content = staff_client.get(_url(user)).content.decode()
    bill = links.matching("🏠 ЖКХ/Аренда", amount__lt=0)
    loan = links.matching("agr-77")
    assert html.escape(bill) in content
    assert html.escape(loan) in content
    # Rent was paid in January to May; the loan in five parts each month, January to June.
    assert len(_result_rows(staff_client, bill)) == 5
    assert len(_result_rows(staff_client, loan)) == 30


# --- Selectors ----------------------------------------------------------------------------------


def test_balance_history_works_back_from_todays_balance(user):
    accounts = build_household(user)
    history = selectors.spendable_balance_history(
        user=user, since=date(2026, 5, 24), until=date(2026, 6, 5), zone=MOSCOW
    )
    balances = {row["date"]: row["balance"] for row in history["days"]}
    # Only the checking account (50000 now) is spendable. Backwards from it: the loan's parts
    # (3000 on Jun 1-5), the own transfer out (10000 on May 26), the salary (100000 on May 25).
    assert balances[date(2026, 6, 5)] == D("50000.00")
    assert balances[date(2026, 6, 4)] == D("53000.00")
    assert balances[date(2026, 5, 31)] == D("65000.00")
    assert balances[date(2026, 5, 26)] == D("65000.00")
    assert balances[date(2026, 5, 25)] == D("75000.00")
    assert balances[date(2026, 5, 24)] == D("-25000.00")
    assert len(history["days"]) == 13
    assert history["account_ids"] == [accounts["checking"].pk]
    assert history["readings"] == []


def test_balance_history_lists_a_day_once_every_account_has_a_reading(user):
    accounts = build_household(user)
    as_of = datetime(2026, 6, 5, 9, 0, tzinfo=UTC)
    BalanceSnapshot.objects.create(
        account=accounts["checking"], available=D("50000.00"), booked=D("49000.00"), as_of=as_of
    )
    history = selectors.spendable_balance_history(
        user=user, since=date(2026, 6, 1), until=date(2026, 6, 5), zone=MOSCOW
    )
    assert history["readings"] == [
        {"date": date(2026, 6, 5), "balance": D("50000.00"), "as_of": as_of}
    ]


def test_category_spending_is_the_months_aggregates_largest_first(user):
    build_household(user)
    rows = selectors.category_spending_list(
        user=user, since=date(2026, 5, 1), until=date(2026, 5, 31)
    )
    assert [(r["category__code"], r["total"]) for r in rows] == [
        ("groceries", D("20000.00")),
        ("utilities", D("20000.00")),
        ("loan_payments", D("15000.00")),
        ("restaurants", D("10000.00")),
    ]
