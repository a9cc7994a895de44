"""The staff "Financial picture" page in headless Chromium, for sandbox client team260-1 synced
from all three banks over real HTTP: the figures it shows are the dashboard API's, its charts
are inline SVG, nothing is fetched from another origin and it fits a 1400 px window."""

from decimal import Decimal
from urllib.parse import urlsplit

import pytest

from conftest import screenshots_dir

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NBSP = "\u00a0"


def _money(text: str) -> str:
    """The API's amount as the page writes it, worked out here rather than imported: groups of
    three digits split by no-break spaces, two decimals, a real minus, then '₽'."""
    value = Decimal(text)
    digits = f"{abs(value):,.2f}".replace(",", NBSP)
    return f"{'−' if value < 0 else ''}{digits}{NBSP}₽"


def _synced_client_1(make_user):
    from analytics.services import analytics_recompute
    from banking.services.connections import connection_get_or_create
    from consents import services as consent_services
    from consents.models import ConsentKind, ConsentStatus
    from sync.models import SyncRun, SyncStatus, SyncTrigger
    from sync.services import sync_run_execute

    # Sandbox client team260-1 at every bank (another test user holding it gives it up).
    user = make_user(email="client1@example.com", client_id="team260-1")
    for bank_code in ("vbank", "abank", "sbank"):
        for kind in (ConsentKind.ACCOUNTS, ConsentKind.PRODUCTS):
            consent = consent_services.consent_ensure(user=user, bank_code=bank_code, kind=kind)
            if consent.status == ConsentStatus.PENDING:
                consent = consent_services.consent_approve_demo(consent=consent)
            assert consent.status == ConsentStatus.AUTHORIZED, (bank_code, kind)
        connection = connection_get_or_create(user=user, bank_code=bank_code)
        run = SyncRun.objects.create(
            connection=connection, user_id=user.pk, trigger=SyncTrigger.USER
        )
        sync_run_execute(sync_run_id=run.pk)
        run.refresh_from_db()
        assert run.status == SyncStatus.SUCCEEDED, (bank_code, run.error)
    analytics_recompute(user=user)
    return user


def test_financial_picture_shows_the_dashboards_figures_drawn_offline(
    sandbox_banks, make_user, staff_page, api_client
):
    user = _synced_client_1(make_user)
    api_client.force_authenticate(user)
    dashboard = api_client.get("/api/dashboard").json()
    assert dashboard["state"] == "ready"

    page = staff_page
    origin = urlsplit(page.base_url).netloc
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    response = page.goto(f"{page.base_url}/admin/users/user/{user.pk}/financial-picture/")
    assert response.status == 200
    page.wait_for_load_state("networkidle")

    def figure(name: str) -> str:
        return page.locator(f'[data-figure="{name}"]').inner_text()

    assert figure("sts-period") == _money(dashboard["sts"]["period"])
    assert figure("sts-daily") == _money(dashboard["sts"]["daily"])
    payment = dashboard["debt"]["next_payment"]
    assert figure("next-payment-amount") == _money(payment["amount"])
    assert figure("next-payment-date") == payment["date"]
    assert figure("total-debt") == _money(dashboard["debt"]["total"])
    assert figure("savings-total") == _money(dashboard["savings"]["total"])
    assert figure("snapshot-id") == f"#{dashboard['snapshot_id']}"
    assert figure("health-score") == str(dashboard["health"]["score"])

    # The four charts, drawn on the server as inline SVG.
    for chart in ("chart-forecast", "chart-sts", "chart-health", "chart-debts", "chart-categories"):
        assert page.locator(f"svg#{chart}").count() == 1, chart
    assert page.locator("svg#chart-forecast .marker-income").count() >= 1
    assert page.locator("svg#chart-forecast .marker-obligation").count() >= 1
    assert page.locator("svg#chart-forecast .low-point").count() >= 1
    assert page.locator("svg#chart-sts .waterfall-step").count() >= 5
    # One bar per health indicator the API lists.
    assert page.locator("svg#chart-health .bar-row").count() == len(
        dashboard["health"]["indicators"]
    )
    # The STS bar is the API's figure.
    sts_bar = page.locator("svg#chart-sts .waterfall-step").last.text_content()
    assert _money(dashboard["sts"]["period"]) in sts_bar

    # Nothing left the machine: every request went to the live server.
    assert requested, "the page made no request at all"
    foreign = [url for url in requested if urlsplit(url).netloc != origin]
    assert foreign == []

    # No horizontal scroll at 1400 px.
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400

    path = screenshots_dir() / "financial_picture.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
    # What a judge sees first (one 1400×900 screen), and each chart on its own at full size.
    page.screenshot(path=str(screenshots_dir() / "financial_picture_top.png"))
    for chart in ("forecast", "sts", "health", "debts", "categories"):
        box = page.locator(f"svg#chart-{chart}").locator("xpath=..")
        box.screenshot(path=str(screenshots_dir() / f"financial_picture_{chart}.png"))


def test_financial_picture_links_open_the_rows_behind_the_figures(
    sandbox_banks, make_user, staff_page, api_client
):
    """Following the page's links: the next payment's rows (its loan agreement, or a bill's
    past debits), a debt's agreement, a category's debits; the transaction's own page shows the
    bank's JSON."""
    user = _synced_client_1(make_user)
    api_client.force_authenticate(user)
    payment = api_client.get("/api/dashboard").json()["debt"]["next_payment"]
    assert payment, "client 1 has a loan: something is always due"
    page = staff_page
    picture = f"{page.base_url}/admin/users/user/{user.pk}/financial-picture/"
    page.goto(picture)

    # What is due next depends on today's date: a loan instalment or a recurring bill.
    page.locator('[data-figure="next-payment-amount"]').click()
    page.wait_for_load_state()
    if payment["bank_agreement_id"]:
        assert "/admin/banking/productagreement/" in page.url
        assert payment["bank_agreement_id"] in page.locator("#result_list tbody").text_content()
    else:
        assert "/admin/banking/transaction/" in page.url
        rows = page.locator("#result_list tbody tr")
        assert rows.count() >= 1
        assert payment["label"] in rows.first.text_content()

    # Each debt's row opens its own agreement, whatever is due next.
    debts = {debt["bank_agreement_id"] for debt in api_client.get("/api/debts").json()["debts"]}
    assert any(agreement.startswith("loan-team260-1-") for agreement in debts)
    debt_rows = page.locator("#debts ~ table.fp-table").first.locator("tbody tr")
    page.goto(picture)
    assert debt_rows.count() == len(debts)
    opened = set()
    for index in range(len(debts)):
        page.goto(picture)
        row = debt_rows.nth(index)
        agreement = row.locator("td").first.locator("span.muted").text_content().strip()
        row.locator('a:text-is("agreement")').click()
        page.wait_for_load_state()
        assert "/admin/banking/productagreement/" in page.url
        assert agreement in page.locator("#result_list tbody").text_content()
        opened.add(agreement)
    assert opened == debts

    page.goto(picture)
    page.locator("svg#chart-categories a").first.click()
    page.wait_for_load_state()
    assert "/admin/banking/transaction/" in page.url
    rows = page.locator("#result_list tbody tr")
    assert rows.count() >= 1
    rows.first.locator("a").first.click()
    page.wait_for_load_state()
    assert "Raw bank JSON" in page.content()
