"""A 401 is a token expiry only when the bank says so (SPEC §2.3, issue 21: "a product-consent
revoke answered 401 and FinTrack took it for an expired token"). "Could not validate
credentials" (or a bare Bearer challenge) → a new token, once, and the call repeated; any other
401 on a route called with the bank token → BankPermissionError at once: no new token, no retry;
a 401 to a credentials call → BankAuthError."""

import pytest
import responses
from responses import matchers

from banking.clients import VBankClient, parsing
from banking.clients.errors import BankAuthError, BankPermissionError, BankRejectedError
from fintrack.core.exception_handler import upstream_error_body

BASE = "https://vbank.test"
EXPIRED = {"detail": "Could not validate credentials"}
BEARER = {"WWW-Authenticate": "Bearer"}


class Tokens:
    """An injected token provider that counts what the transport asks of it."""

    def __init__(self):
        self.issued = 0
        self.invalidated = 0

    def get(self) -> str:
        self.issued += 1
        return f"tok-{self.issued}"

    def invalidate(self) -> None:
        self.invalidated += 1


@pytest.fixture
def tokens() -> Tokens:
    return Tokens()


@pytest.fixture
def client(tokens, settings) -> VBankClient:
    settings.BANK_RATE_LIMIT_PER_SECOND = 0
    bank_client = VBankClient(
        base_url=BASE,
        team_id="team260",
        team_secret="secret",
        token_provider=tokens.get,
        token_invalidator=tokens.invalidate,
        max_retries=3,
    )
    bank_client.sleep = lambda seconds: None
    bank_client.circuit = None
    return bank_client


@pytest.mark.parametrize(
    "detail",
    ["Insufficient permissions", "Invalid client_id", "Client token required for own account"],
)
def test_a_product_consent_revoke_refused_with_401_is_not_a_token_expiry(client, tokens, detail):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.delete(
            f"{BASE}/product-agreement-consents/pagc-1",
            status=401,
            json={"detail": detail},
            match=[matchers.query_param_matcher({"client_id": "team260-3"})],
        )

        with pytest.raises(BankPermissionError) as caught:
            client.revoke_product_consent(consent_id="pagc-1", client_id="team260-3")

        assert len(mock.calls) == 1  # not repeated with a new token, not retried
    assert (tokens.issued, tokens.invalidated) == (1, 0)
    error = caught.value
    assert error.code == "bank_permission_denied"
    assert isinstance(error, BankRejectedError) and not error.retryable
    assert error.status_code == 401
    assert error.message == f"vbank /product-agreement-consents/pagc-1: {detail}"
    status, body = upstream_error_body(error)
    assert status == 502
    assert body["code"] == "bank_permission_denied"
    assert body["extra"] == {"bank_code": "vbank", "bank_error": "bank_permission_denied",
                             "bank_status": 401}  # fmt: skip


def test_the_same_401_on_an_account_consent_route_is_a_permission_error_too(client, tokens):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(
            f"{BASE}/account-consents/request",
            status=401,
            json={"detail": "Insufficient permissions"},
        )
        with pytest.raises(BankPermissionError):
            client.request_account_consent(client_id="team260-3")
        assert len(mock.calls) == 1
    assert tokens.invalidated == 0


def test_could_not_validate_credentials_refreshes_the_token_once_and_repeats(client, tokens):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.delete(
            f"{BASE}/product-agreement-consents/pagc-1",
            status=401,
            json=EXPIRED,
            headers=BEARER,
            match=[matchers.header_matcher({"Authorization": "Bearer tok-1"})],
        )
        mock.delete(
            f"{BASE}/product-agreement-consents/pagc-1",
            status=204,
            match=[matchers.header_matcher({"Authorization": "Bearer tok-2"})],
        )

        client.revoke_product_consent(consent_id="pagc-1", client_id="team260-3")

    assert (tokens.issued, tokens.invalidated) == (2, 1)


def test_a_bare_bearer_challenge_is_a_token_expiry(client, tokens):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/products", status=401, body="", headers=BEARER)
        mock.get(f"{BASE}/products", json={"data": {"product": []}})

        client.list_products()

    assert tokens.invalidated == 1


def test_a_bearer_challenge_with_another_detail_is_not(client, tokens):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(
            f"{BASE}/product-agreement-consents/pagc-1",
            status=401,
            json={"detail": "Insufficient permissions"},
            headers=BEARER,
        )
        with pytest.raises(BankPermissionError):
            client.get_product_consent(consent_id="pagc-1", client_id="team260-3")
    assert tokens.invalidated == 0


def test_a_token_still_refused_after_the_refresh_is_a_bank_auth_error(client, tokens):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/products", status=401, json=EXPIRED, headers=BEARER)
        mock.get(f"{BASE}/products", status=401, json=EXPIRED, headers=BEARER)
        with pytest.raises(BankAuthError) as caught:
            client.list_products()
        assert len(mock.calls) == 2
    assert caught.value.code == "bank_auth_failed"
    assert tokens.invalidated == 1


def test_a_refused_team_secret_is_a_bank_auth_error_whatever_its_detail(settings):
    settings.BANK_RATE_LIMIT_PER_SECOND = 0
    bank_client = VBankClient(base_url=BASE, team_id="team260", team_secret="wrong")
    bank_client.circuit = None
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(f"{BASE}/auth/bank-token", status=401, json={"detail": "Invalid client_id"})
        with pytest.raises(BankAuthError):
            bank_client.fetch_bank_token()
        assert len(mock.calls) == 1


def test_a_client_token_the_bank_refuses_is_a_bank_auth_error_without_refresh(client, tokens):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(f"{BASE}/auth/login", json={"access_token": "client-tok"})
        mock.post(f"{BASE}/account-consents/sign", status=401, json=EXPIRED, headers=BEARER)
        with pytest.raises(BankAuthError):
            client.approve_account_consent_as_client(client_id="team260-3", request_id="req-1")
        assert len(mock.calls) == 2
    assert tokens.invalidated == 0


@pytest.mark.parametrize(
    ("body", "challenge", "refused"),
    [
        ({"detail": "Could not validate credentials"}, "Bearer", True),
        ({"detail": "could not validate credentials."}, "", True),
        ({"detail": {"message": "Could not validate credentials"}}, "", True),
        (None, "Bearer", True),
        (None, 'Bearer error="invalid_token"', True),
        (None, 'Bearer error="insufficient_scope"', False),
        (None, "", False),
        ({"detail": "Insufficient permissions"}, "Bearer", False),
        ({"detail": "Invalid client_id"}, "", False),
        ({"detail": [{"msg": "Field required", "loc": ["query", "client_id"]}]}, "", False),
    ],
)
def test_token_refused_reads_the_detail_first_then_the_challenge(body, challenge, refused):
    assert parsing.token_refused(body, challenge) is refused
