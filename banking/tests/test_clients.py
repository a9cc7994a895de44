"""The bank HTTP client against faked bank answers shaped like ../shared/bank-api/examples."""

import base64
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import responses
from responses import matchers

from banking.clients import ABankClient, SBankClient, VBankClient, parsing
from banking.clients.errors import (
    BankAuthError,
    BankNotFoundError,
    BankRejectedError,
    BankResponseError,
    BankUnavailableError,
    ConsentRequiredError,
)

EXAMPLES = Path("/work/shared/bank-api/examples")
if not EXAMPLES.is_dir():  # the checkout may sit next to shared/ instead
    EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "bank-api" / "examples"
BASE = "https://vbank.test"
SECRET = "team-secret-xyz"


def example(name: str):
    return json.loads((EXAMPLES / name).read_text())


def jwt_with_exp(exp: int) -> str:
    def part(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': 'team260', 'exp': exp})}.sig"


class Tokens:
    """A token provider that hands out tok-1, tok-2, … and counts invalidations."""

    def __init__(self):
        self.issued = 0
        self.current = None
        self.invalidated = 0

    def provide(self) -> str:
        if self.current is None:
            self.issued += 1
            self.current = f"tok-{self.issued}"
        return self.current

    def invalidate(self) -> None:
        self.invalidated += 1
        self.current = None


@pytest.fixture
def tokens():
    return Tokens()


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(tokens, sleeps):
    bank_client = VBankClient(
        base_url=BASE + "/",
        team_id="team260",
        team_secret=SECRET,
        max_retries=3,
        backoff_seconds=0.5,
        max_sleep_seconds=10.0,
        token_provider=tokens.provide,
        token_invalidator=tokens.invalidate,
    )
    bank_client.sleep = sleeps.append
    bank_client.jitter = lambda cap: cap  # full jitter's upper bound, deterministic
    return bank_client


# --- Token -------------------------------------------------------------------------------------


@responses.activate(assert_all_requests_are_fired=True)
def test_fetch_bank_token_sends_credentials_in_the_query_and_uses_expires_in():
    responses.post(
        f"{BASE}/auth/bank-token",
        json=example("token.json"),
        match=[
            matchers.query_param_matcher({"client_id": "team260", "client_secret": SECRET}),
            matchers.header_matcher({"Accept": "application/json"}),
        ],
    )
    bank_client = VBankClient(base_url=BASE, team_id="team260", team_secret=SECRET)
    before = datetime.now(UTC)

    info = bank_client.fetch_bank_token()

    assert info.access_token == example("token.json")["access_token"]
    assert before + timedelta(seconds=86400) <= info.expires_at
    assert info.expires_at <= datetime.now(UTC) + timedelta(seconds=86400)
    assert "Authorization" not in responses.calls[0].request.headers
    assert responses.calls[0].request.body is None
    assert bank_client.calls_made == 1


@responses.activate(assert_all_requests_are_fired=True)
def test_fetch_bank_token_without_expires_in_reads_the_jwt_exp():
    token = jwt_with_exp(2000000000)
    responses.post(f"{BASE}/auth/bank-token", json={"access_token": token})
    bank_client = VBankClient(base_url=BASE, team_id="team260", team_secret=SECRET)

    info = bank_client.fetch_bank_token()

    assert info.expires_at == datetime.fromtimestamp(2000000000, tz=UTC)


@responses.activate(assert_all_requests_are_fired=True)
def test_bad_team_secret_is_a_bank_auth_error_without_retry(sleeps):
    responses.post(f"{BASE}/auth/bank-token", status=401, json={"detail": "Invalid client_secret"})
    bank_client = VBankClient(base_url=BASE, team_id="team260", team_secret="wrong")
    bank_client.sleep = sleeps.append

    with pytest.raises(BankAuthError) as caught:
        bank_client.fetch_bank_token()

    assert caught.value.status_code == 401
    assert "Invalid client_secret" in caught.value.message
    assert len(responses.calls) == 1
    assert sleeps == []


# --- Accounts, balances ------------------------------------------------------------------------


@responses.activate(assert_all_requests_are_fired=True)
def test_list_accounts_sends_token_interbank_headers_and_normalises_types(client):
    responses.get(
        f"{BASE}/accounts",
        json=example("accounts.json"),
        match=[
            matchers.query_param_matcher({"client_id": "team260-3"}),
            matchers.header_matcher(
                {
                    "Authorization": "Bearer tok-1",
                    "X-Requesting-Bank": "team260",
                    "X-Consent-Id": "consent-46965b4ef205",
                }
            ),
        ],
    )

    accounts = client.list_accounts(client_id="team260-3", consent_id="consent-46965b4ef205")

    assert [a.account_id for a in accounts] == ["acc-3846", "acc-3847", "acc-5121"]
    assert [a.account_type for a in accounts] == ["checking", "savings", "loan"]
    first = accounts[0]
    assert first.bank_subtype == "Checking"
    assert first.bank_account_type == "Personal"
    assert first.status == "Enabled"
    assert first.currency == "RUB"
    assert first.nickname == "Checking счет"
    assert first.opening_date == date(2024, 10, 30)
    assert first.identification == "4081781027506084636"
    assert first.holder_name == "Пенсионеров Пенсионер Пенсионерович (team260)"
    assert accounts[2].identification == "455d5d7a74bb3be416"
    assert first.raw["accountId"] == "acc-3846"


@pytest.mark.parametrize(
    ("sub_type", "expected"),
    [
        ("Checking", "checking"),
        ("Savings", "savings"),
        ("Deposit", "deposit"),
        ("Loan", "loan"),
        ("Card", "card"),
        ("CreditCard", "credit_card"),
        ("Credit_card", "credit_card"),
        ("credit_card", "credit_card"),
        ("Metal", "other"),
        (None, "other"),
    ],
)
def test_account_sub_types_are_normalised(sub_type, expected):
    assert parsing.account_type(sub_type) == expected


@responses.activate(assert_all_requests_are_fired=True)
def test_balances_take_available_and_booked_signed_by_indicator(client):
    body = example("balances.json")
    body["data"]["balance"][1]["creditDebitIndicator"] = "Debit"
    body["data"]["balance"][1]["amount"]["amount"] = "50.10"
    responses.get(
        f"{BASE}/accounts/acc-3846/balances",
        json=body,
        match=[matchers.header_matcher({"X-Consent-Id": "consent-1"})],
    )

    balance = client.get_balances(
        client_id="team260-3", account_id="acc-3846", consent_id="consent-1"
    )

    assert balance.available == Decimal("121398.37")
    assert balance.booked == Decimal("-50.10")
    assert balance.currency == "RUB"
    assert balance.as_of == datetime(2025, 11, 26, 9, 30, 59, 151865, tzinfo=UTC)


# --- Transactions ------------------------------------------------------------------------------


@responses.activate(assert_all_requests_are_fired=True)
def test_transactions_page_is_signed_normalised_and_reports_next_page(client):
    responses.get(
        f"{BASE}/accounts/acc-3846/transactions",
        json=example("transactions.json"),
        match=[
            matchers.query_param_matcher({"client_id": "team260-3", "page": "1", "limit": "100"}),
            matchers.header_matcher({"X-Consent-Id": "consent-1", "X-Requesting-Bank": "team260"}),
        ],
    )

    page = client.get_transactions_page(
        client_id="team260-3", account_id="acc-3846", consent_id="consent-1", page=1
    )

    assert [t.amount for t in page.transactions] == [
        Decimal("114911.38"),
        Decimal("-2731.40"),
        Decimal("-2707.49"),
        Decimal("-20870.88"),
    ]
    assert {t.status for t in page.transactions} == {"booked"}
    grocery = page.transactions[1]
    assert grocery.transaction_id == "tx-team260-3-m0-2"
    assert grocery.booking_date == datetime(2025, 11, 23, 11, 4, 12, 80562, tzinfo=UTC)
    assert grocery.merchant_name == "Пятёрочка"
    assert grocery.merchant_category == "grocery"
    assert grocery.mcc == "5411"
    assert grocery.bank_transaction_code == "IssuedDebitTransfer"
    assert grocery.counterparty == "Пятёрочка"
    assert grocery.description == "🏪 Продукты"
    assert page.transactions[2].counterparty == ""
    assert (page.page, page.total_pages, page.total_records) == (1, 18, 70)
    assert page.has_next is True
    assert page.skipped == []


def _transaction(tx_id="tx-1", amount="10.00", status="Booked", when="2025-11-25T10:00:00Z"):
    return {
        "accountId": "acc-1",
        "transactionId": tx_id,
        "amount": {"amount": amount, "currency": "RUB"},
        "creditDebitIndicator": "Debit",
        "status": status,
        "bookingDateTime": when,
        "valueDateTime": when,
        "transactionInformation": "x",
        "bankTransactionCode": {"code": "01"},
    }


@responses.activate(assert_all_requests_are_fired=True)
def test_last_page_without_next_link_has_no_next(client):
    responses.get(
        f"{BASE}/accounts/acc-1/transactions",
        json={
            "data": {"transaction": [_transaction()]},
            "links": {"self": "/accounts/acc-1/transactions?page=3&limit=100"},
            "meta": {"totalPages": 3, "totalRecords": 201, "currentPage": 3, "pageSize": 100},
        },
    )

    page = client.get_transactions_page(
        client_id="team260-3", account_id="acc-1", consent_id="consent-1", page=3
    )

    assert page.has_next is False
    assert page.page == 3


@responses.activate(assert_all_requests_are_fired=True)
def test_without_links_has_next_comes_from_meta_pages(client):
    responses.get(
        f"{BASE}/accounts/acc-1/transactions",
        json={
            "data": {"transaction": [_transaction()]},
            "meta": {"totalPages": 3, "currentPage": 2},
        },
    )

    page = client.get_transactions_page(
        client_id="team260-3", account_id="acc-1", consent_id="consent-1", page=2
    )

    assert page.has_next is True


@pytest.mark.parametrize(
    ("raw_status", "expected"),
    [
        ("Booked", "booked"),
        ("completed", "booked"),
        ("SETTLED", "booked"),
        ("Pending", "pending"),
        ("declined", "declined"),
        ("Rejected", "declined"),
        ("refunded", "refunded"),
    ],
)
@responses.activate(assert_all_requests_are_fired=True)
def test_transaction_statuses_are_normalised_case_insensitively(client, raw_status, expected):
    responses.get(
        f"{BASE}/accounts/acc-1/transactions",
        json={"data": {"transaction": [_transaction(status=raw_status)]}, "links": {}},
    )

    page = client.get_transactions_page(
        client_id="team260-3", account_id="acc-1", consent_id="consent-1", page=1
    )

    assert [t.status for t in page.transactions] == [expected]
    assert page.transactions[0].amount == Decimal("-10.00")


@responses.activate(assert_all_requests_are_fired=True)
def test_bad_transaction_items_are_skipped_with_a_reason_and_the_page_survives(client):
    items = [
        _transaction(tx_id="tx-good"),
        _transaction(tx_id=""),
        _transaction(tx_id="tx-nan", amount="abc"),
        _transaction(tx_id="tx-neg", amount="-5.00"),
        _transaction(tx_id="tx-date", when="yesterday"),
        _transaction(tx_id="tx-status", status="01"),
        {**_transaction(tx_id="tx-noamount"), "amount": None},
        "not an object",
    ]
    responses.get(
        f"{BASE}/accounts/acc-1/transactions",
        json={"data": {"transaction": items}, "links": {}},
    )

    page = client.get_transactions_page(
        client_id="team260-3", account_id="acc-1", consent_id="consent-1", page=1
    )

    assert [t.transaction_id for t in page.transactions] == ["tx-good"]
    assert [entry["reason"] for entry in page.skipped] == [
        "missing transactionId",
        "tx-nan: missing or non-numeric amount",
        "tx-neg: negative amount (sign must come from the indicator)",
        "tx-date: unparseable bookingDateTime",
        "tx-status: unknown status '01'",
        "tx-noamount: missing or non-numeric amount",
        "not an object",
    ]
    assert page.skipped[1]["item"]["transactionId"] == "tx-nan"


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"data": {}},
        {"data": {"transaction": "nope"}},
        {"transactions": []},
    ],
)
@responses.activate(assert_all_requests_are_fired=True)
def test_transactions_page_of_the_wrong_shape_is_a_bank_response_error(client, body):
    responses.get(f"{BASE}/accounts/acc-1/transactions", json=body)

    with pytest.raises(BankResponseError):
        client.get_transactions_page(
            client_id="team260-3", account_id="acc-1", consent_id="consent-1", page=1
        )


@responses.activate(assert_all_requests_are_fired=True)
def test_truncated_json_on_200_is_a_bank_response_error_and_not_retried(client, sleeps):
    responses.get(
        f"{BASE}/accounts/acc-1/transactions",
        body='{"data": {"transaction": [{"accountId": "acc-1", "transac',
        content_type="application/json",
    )

    with pytest.raises(BankResponseError) as caught:
        client.get_transactions_page(
            client_id="team260-3", account_id="acc-1", consent_id="consent-1", page=1
        )

    assert caught.value.status_code == 200
    assert len(responses.calls) == 1
    assert sleeps == []


# --- Error classes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error_class", "message_part"),
    [
        (
            403,
            {
                "detail": {
                    "error": "CONSENT_REQUIRED",
                    "message": "Требуется согласие клиента",
                    "consent_request_url": "/account-consents/request",
                }
            },
            ConsentRequiredError,
            "Требуется согласие клиента",
        ),
        (
            403,
            {"error": "CONSENT_REQUIRED", "message": "no consent", "how_to_get_consent": "..."},
            ConsentRequiredError,
            "no consent",
        ),
        (403, {"detail": "Not authenticated"}, BankRejectedError, "Not authenticated"),
        (404, {"detail": "Account not found"}, BankNotFoundError, "Account not found"),
        (
            400,
            {"detail": "client_id required for interbank requests"},
            BankRejectedError,
            "client_id required for interbank requests",
        ),
        (
            422,
            {
                "detail": [
                    {
                        "type": "less_than_equal",
                        "loc": ["query", "limit"],
                        "msg": "Input should be less than or equal to 100",
                        "input": "500",
                    }
                ]
            },
            BankRejectedError,
            "query.limit: Input should be less than or equal to 100",
        ),
    ],
)
@responses.activate(assert_all_requests_are_fired=True)
def test_client_errors_become_typed_errors_without_retry(
    client, sleeps, status, body, error_class, message_part
):
    responses.get(f"{BASE}/accounts", status=status, json=body)

    with pytest.raises(error_class) as caught:
        client.list_accounts(client_id="team260-3", consent_id="consent-1")

    assert type(caught.value) is error_class
    assert caught.value.status_code == status
    assert message_part in caught.value.message
    assert caught.value.detail == body
    assert caught.value.retryable is False
    assert len(responses.calls) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (500, "Internal Server Error", "text/plain"),
        (502, "<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
        (503, "", "text/html"),
        (504, "<html>504 Gateway Time-out</html>", "text/html"),
    ],
)
@responses.activate(assert_all_requests_are_fired=True)
def test_server_errors_are_retried_with_backoff_then_unavailable(
    client, sleeps, status, body, content_type
):
    responses.get(f"{BASE}/accounts", status=status, body=body, content_type=content_type)

    with pytest.raises(BankUnavailableError) as caught:
        client.list_accounts(client_id="team260-3", consent_id="consent-1")

    assert caught.value.status_code == status
    assert caught.value.retryable is True
    assert caught.value.retry_after == 8.0
    assert len(responses.calls) == 4  # one try + BANK_MAX_RETRIES
    assert client.calls_made == 4
    assert sleeps == [0.5, 1.0, 2.0]


@responses.activate(assert_all_requests_are_fired=True)
def test_a_5xx_then_success_returns_the_data(client, sleeps):
    responses.get(f"{BASE}/accounts", status=502, body="<html>Bad Gateway</html>")
    responses.get(f"{BASE}/accounts", json=example("accounts.json"))

    accounts = client.list_accounts(client_id="team260-3", consent_id="consent-1")

    assert len(accounts) == 3
    assert sleeps == [0.5]
    assert client.calls_made == 2


@responses.activate(assert_all_requests_are_fired=True)
def test_429_honours_retry_after(client, sleeps):
    responses.get(f"{BASE}/products", status=429, body="", headers={"Retry-After": "3"})
    responses.get(f"{BASE}/products", json=example("products.json"))

    products = client.list_products()

    assert len(products) == 5
    assert sleeps == [3.0]


@responses.activate(assert_all_requests_are_fired=True)
def test_429_retry_after_is_reported_when_retries_run_out(client, sleeps):
    for _ in range(4):
        responses.get(f"{BASE}/products", status=429, body="", headers={"Retry-After": "3"})

    with pytest.raises(BankUnavailableError) as caught:
        client.list_products()

    assert sleeps == [3.0, 3.0, 3.0]
    assert caught.value.retry_after == 3.0
    assert caught.value.status_code == 429


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.ConnectTimeout("connect timed out"),
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectionError("Connection reset by peer"),
    ],
)
@responses.activate(assert_all_requests_are_fired=True)
def test_timeouts_and_dropped_connections_are_retried_then_unavailable(client, sleeps, error):
    for _ in range(4):
        responses.get(f"{BASE}/accounts", body=error)

    with pytest.raises(BankUnavailableError) as caught:
        client.list_accounts(client_id="team260-3", consent_id="consent-1")

    assert caught.value.status_code is None
    assert type(caught.value.__cause__) is type(error)
    assert client.calls_made == 4
    assert sleeps == [0.5, 1.0, 2.0]


@responses.activate(assert_all_requests_are_fired=True)
def test_a_connection_dropped_after_a_500_is_retried_until_success(client, sleeps):
    responses.get(f"{BASE}/accounts", status=500, body="Internal Server Error")
    responses.get(f"{BASE}/accounts", body=requests.exceptions.ConnectionError("reset"))
    responses.get(f"{BASE}/accounts", json=example("accounts.json"))

    accounts = client.list_accounts(client_id="team260-3", consent_id="consent-1")

    assert len(accounts) == 3
    assert sleeps == [0.5, 1.0]


def test_every_request_has_a_timeout_and_no_redirects(client, monkeypatch):
    seen = {}

    def fake_request(method, url, **kwargs):
        seen.update(kwargs, method=method, url=url)
        raise requests.exceptions.ConnectTimeout("x")

    monkeypatch.setattr(client.session, "request", fake_request)
    client.max_retries = 0

    with pytest.raises(BankUnavailableError):
        client.list_products(product_type="loan")

    assert seen["timeout"] == 10.0
    assert seen["allow_redirects"] is False
    assert seen["url"] == f"{BASE}/products?product_type=loan"


@responses.activate(assert_all_requests_are_fired=True)
def test_a_redirect_is_not_followed(client):
    responses.get(f"{BASE}/products", status=302, headers={"Location": "https://evil.test/"})

    with pytest.raises(BankResponseError):
        client.list_products()

    assert len(responses.calls) == 1


# --- 401: refresh once -------------------------------------------------------------------------


@responses.activate(assert_all_requests_are_fired=True)
def test_401_refreshes_the_token_once_and_repeats(client, tokens):
    responses.get(
        f"{BASE}/accounts",
        status=401,
        json={"detail": "Could not validate credentials"},
        match=[matchers.header_matcher({"Authorization": "Bearer tok-1"})],
    )
    responses.get(
        f"{BASE}/accounts",
        json=example("accounts.json"),
        match=[matchers.header_matcher({"Authorization": "Bearer tok-2"})],
    )

    accounts = client.list_accounts(client_id="team260-3", consent_id="consent-1")

    assert len(accounts) == 3
    assert tokens.invalidated == 1
    assert tokens.issued == 2


@responses.activate(assert_all_requests_are_fired=True)
def test_a_second_401_is_a_bank_auth_error(client, tokens):
    responses.get(f"{BASE}/accounts", status=401, json={"detail": "Could not validate credentials"})
    responses.get(f"{BASE}/accounts", status=401, json={"detail": "Could not validate credentials"})

    with pytest.raises(BankAuthError) as caught:
        client.list_accounts(client_id="team260-3", consent_id="consent-1")

    assert caught.value.message == "vbank /accounts: Could not validate credentials"
    assert tokens.invalidated == 1
    assert len(responses.calls) == 2


def test_without_a_token_provider_the_client_fetches_and_keeps_its_own_token():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(f"{BASE}/auth/bank-token", json={"access_token": "own", "expires_in": 3600})
        mock.get(
            f"{BASE}/products",
            json=example("products.json"),
            match=[matchers.header_matcher({"Authorization": "Bearer own"})],
        )
        mock.get(f"{BASE}/products", json=example("products.json"))
        bank_client = ABankClient(base_url=BASE, team_id="team260", team_secret=SECRET)

        bank_client.list_products()
        bank_client.list_products()

        assert len(mock.calls) == 3
        assert bank_client.bank_code == "abank"


# --- Consents ----------------------------------------------------------------------------------


@responses.activate(assert_all_requests_are_fired=True)
def test_auto_approved_consent_request_is_authorized_with_its_consent_id(client):
    responses.post(
        f"{BASE}/account-consents/request",
        json=example("consent_request.json"),
        match=[
            matchers.json_params_matcher(
                {
                    "client_id": "team260-3",
                    "permissions": ["ReadAccountsDetail", "ReadBalances", "ReadTransactionsDetail"],
                    "reason": "",
                    "requesting_bank": "team260",
                    "requesting_bank_name": "FinTrack",
                }
            ),
            matchers.header_matcher({"X-Requesting-Bank": "team260"}),
        ],
    )

    result = client.request_account_consent(client_id="team260-3")

    assert result.status == "authorized"
    assert result.consent_id == "consent-46965b4ef205"
    assert result.request_id == "req-73fdb8b9d63e"
    assert "X-Consent-Id" not in responses.calls[0].request.headers


@responses.activate(assert_all_requests_are_fired=True)
def test_manual_consent_request_is_pending_without_consent_id(client):
    responses.post(f"{BASE}/account-consents/request", json=example("consent_request_pending.json"))

    result = client.request_account_consent(client_id="team260-3")

    assert result.status == "pending"
    assert result.consent_id is None
    assert result.request_id == "req-9c1e0b7f44a2"


@pytest.mark.parametrize(
    ("bank_status", "expected"),
    [
        ("AwaitingAuthorization", "pending"),
        ("Authorized", "authorized"),
        ("Revoked", "revoked"),
        ("Expired", "expired"),
        ("Rejected", "rejected"),
    ],
)
@responses.activate(assert_all_requests_are_fired=True)
def test_consent_status_values_are_mapped(client, bank_status, expected):
    body = example("consent_status.json")
    body["data"]["status"] = bank_status
    responses.get(f"{BASE}/account-consents/consent-46965b4ef205", json=body)

    result = client.get_account_consent(consent_id="consent-46965b4ef205")

    assert result.status == expected
    assert result.consent_id == "consent-46965b4ef205"
    assert result.expires_at == datetime(2026, 11, 26, 9, 21, 6, 557675, tzinfo=UTC)
    assert result.permissions == ["ReadAccountsDetail", "ReadBalances", "ReadTransactionsDetail"]


@responses.activate(assert_all_requests_are_fired=True)
def test_polling_by_request_id_never_takes_the_echoed_request_id_as_consent_id(client):
    body = example("consent_status.json")
    body["data"].update(status="AwaitingAuthorization", consentId="req-9c1e0b7f44a2")
    responses.get(f"{BASE}/account-consents/req-9c1e0b7f44a2", json=body)

    result = client.get_account_consent(consent_id="req-9c1e0b7f44a2")

    assert result.status == "pending"
    assert result.consent_id is None
    assert result.request_id == "req-9c1e0b7f44a2"


@responses.activate(assert_all_requests_are_fired=True)
def test_polling_by_request_id_accepts_a_real_consent_id_once_authorized(client):
    body = example("consent_status.json")
    body["data"].update(status="Authorized", consentId="consent-5b2d81c0e7aa")
    responses.get(f"{BASE}/account-consents/req-9c1e0b7f44a2", json=body)

    result = client.get_account_consent(consent_id="req-9c1e0b7f44a2")

    assert result.status == "authorized"
    assert result.consent_id == "consent-5b2d81c0e7aa"


@responses.activate(assert_all_requests_are_fired=True)
def test_revoke_account_consent_accepts_204(client):
    responses.delete(
        f"{BASE}/account-consents/consent-1",
        status=204,
        match=[matchers.header_matcher({"Authorization": "Bearer tok-1"})],
    )

    assert client.revoke_account_consent(consent_id="consent-1") is None


@responses.activate(assert_all_requests_are_fired=True)
def test_demo_self_sign_logs_in_as_the_client_and_signs_the_request(client):
    responses.post(
        f"{BASE}/auth/login",
        json={"access_token": "client-jwt", "token_type": "bearer", "client_id": "team260-3"},
        match=[matchers.json_params_matcher({"username": "team260-3", "password": SECRET})],
    )
    responses.post(
        f"{BASE}/account-consents/sign",
        json=example("consent_sign.json"),
        match=[
            matchers.json_params_matcher(
                {"request_id": "req-9c1e0b7f44a2", "action": "approve", "signature": "password"}
            ),
            matchers.header_matcher({"Authorization": "Bearer client-jwt"}),
        ],
    )

    result = client.approve_account_consent_as_client(
        client_id="team260-3", request_id="req-9c1e0b7f44a2"
    )

    assert result.status == "authorized"
    assert result.consent_id == "consent-5b2d81c0e7aa"
    assert result.request_id == "req-9c1e0b7f44a2"
    assert result.expires_at == datetime(2026, 11, 26, 9, 25, 41, 318204, tzinfo=UTC)
    assert "Authorization" not in responses.calls[0].request.headers


@responses.activate(assert_all_requests_are_fired=True)
def test_product_consent_request_approved_and_pending(client):
    responses.post(
        f"{BASE}/product-agreement-consents/request",
        json=example("product_agreement_consent_request.json"),
        match=[
            matchers.query_param_matcher({"client_id": "team260-3"}),
            matchers.json_params_matcher(
                {
                    "requesting_bank": "team260",
                    "client_id": "team260-3",
                    "read_product_agreements": True,
                },
                strict_match=False,
            ),
        ],
    )
    responses.post(
        f"{BASE}/product-agreement-consents/request",
        json={
            "request_id": "pagcr-1",
            "consent_id": None,
            "status": "pending",
            "auto_approved": False,
            "valid_until": "2026-11-26T09:31:12.482113Z",
        },
    )

    approved = client.request_product_consent(client_id="team260-3")
    pending = client.request_product_consent(client_id="team260-3")

    assert (approved.status, approved.consent_id, approved.request_id) == (
        "authorized",
        "pagc-1ba3070c51e5",
        "pagcr-8e8a8b860ece",
    )
    assert approved.expires_at == datetime(2026, 11, 26, 9, 31, 12, 482113, tzinfo=UTC)
    assert (pending.status, pending.consent_id, pending.request_id) == ("pending", None, "pagcr-1")


# --- Products and agreements -------------------------------------------------------------------


@responses.activate(assert_all_requests_are_fired=True)
def test_products_numbers_become_decimal_or_none(client):
    responses.get(f"{BASE}/products", json=example("products.json"))

    products = client.list_products()

    deposit, mortgage, _, credit_card, debit_card = products
    assert deposit.interest_rate == Decimal("8.50")
    assert deposit.min_amount == Decimal("10000.00")
    assert deposit.max_amount == Decimal("10000000.00")
    assert deposit.term_months == 12
    assert mortgage.product_type == "loan"
    assert credit_card.min_amount is None
    assert credit_card.term_months is None
    assert (debit_card.interest_rate, debit_card.max_amount) == (None, None)
    assert "X-Requesting-Bank" not in responses.calls[0].request.headers


@responses.activate(assert_all_requests_are_fired=True)
def test_agreements_floats_become_decimal_and_naive_dates_utc(client):
    responses.get(
        f"{BASE}/product-agreements",
        json=example("product_agreements.json"),
        match=[
            matchers.query_param_matcher({"client_id": "team260-3"}),
            matchers.header_matcher(
                {
                    "X-Product-Agreement-Consent-Id": "pagc-1",
                    "X-Requesting-Bank": "team260",
                }
            ),
        ],
    )

    loan, deposit = client.list_agreements(client_id="team260-3", product_consent_id="pagc-1")

    assert loan.amount == Decimal("1800000.0")
    assert loan.start_date == datetime(2025, 11, 6, 19, 11, 27, 212166, tzinfo=UTC)
    assert loan.end_date == datetime(2045, 7, 24, 19, 11, 27, 209950, tzinfo=UTC)
    assert loan.account_number == "455d5d7a74bb3be416"
    assert loan.interest_rate is None
    assert deposit.product_type == "deposit"
    assert "X-Consent-Id" not in responses.calls[0].request.headers


@responses.activate(assert_all_requests_are_fired=True)
def test_agreement_detail_has_rate_and_balance(client):
    responses.get(
        f"{BASE}/product-agreements/agr-2f189c66585e",
        json=example("product_agreement_detail.json"),
        match=[matchers.query_param_matcher({"client_id": "team260-3"})],
    )

    agreement = client.get_agreement(
        client_id="team260-3", product_consent_id="pagc-1", agreement_id="agr-2f189c66585e"
    )

    assert agreement.interest_rate == Decimal("9.3")
    assert agreement.account_balance == Decimal("1800000.0")
    assert agreement.status == "active"


def test_per_bank_subclasses_differ_only_in_identity_and_approval_hint():
    assert (VBankClient.bank_code, VBankClient.auto_approves_account_consents) == ("vbank", True)
    assert (ABankClient.bank_code, ABankClient.auto_approves_account_consents) == ("abank", True)
    assert (SBankClient.bank_code, SBankClient.auto_approves_account_consents) == ("sbank", False)


def test_proxy_and_ca_bundle_come_from_the_environment_once_for_the_bank_url(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/bank-ca.pem")
    monkeypatch.setenv("NO_PROXY", "abank.test")

    proxied = VBankClient(base_url=BASE, team_id="team260", team_secret=SECRET)
    bypassed = VBankClient(base_url="https://abank.test", team_id="team260", team_secret=SECRET)
    unverified = VBankClient(base_url=BASE, team_id="team260", team_secret=SECRET, verify_tls=False)

    assert proxied.session.proxies.get("https") == "http://proxy.internal:3128"
    assert proxied.session.verify == "/etc/ssl/bank-ca.pem"
    assert "https" not in bypassed.session.proxies
    assert unverified.session.verify is False
    # Nothing is re-read per request: a later change of the environment does not apply.
    assert proxied.session.trust_env is False


def test_a_bank_client_keeps_as_many_connections_as_a_sync_reads_accounts_at_once(settings):
    from banking.services.clients import bank_client_for

    settings.BANKS = {"vbank": {"name": "VBank", "base_url": BASE}}
    settings.BANK_HTTP_CONNECTIONS = 1
    settings.SYNC_PARALLEL_ACCOUNTS = 3

    client = bank_client_for("vbank")

    assert client.session.get_adapter(BASE)._pool_maxsize == 3
