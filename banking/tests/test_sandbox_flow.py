"""End to end over real HTTP: our clients and consent services against the sandbox banks,
served by pytest-django's live server. The whole consent and data flow, for each bank."""

import json
from decimal import Decimal

import pytest

from audit.models import RawApiLog
from banking.models import BankConnection
from banking.services.clients import bank_client_for
from banking.services.tokens import bank_token_cache_clear
from consents.models import ConsentKind, ConsentStatus
from consents.services import consent_approve_demo, consent_ensure, consent_refresh
from fintrack.core.correlation import correlation_scope
from sandbox import services
from sandbox.ground_truth import client_bank_truth

BANK_CODES = ["vbank", "abank", "sbank"]


@pytest.fixture
def live_banks(live_server, settings):
    settings.BANKS = {
        code: {"name": code, "base_url": f"{live_server.url}/sandbox/{code}"} for code in BANK_CODES
    }
    settings.DEMO_BANK_CLIENT_SELF_SIGN = True
    settings.BANK_MAX_RETRIES = 1
    settings.BANK_RETRY_BACKOFF_SECONDS = 0.01
    bank_token_cache_clear()
    yield
    bank_token_cache_clear()


def _authorized(consent, *, bank_code):
    """Approve a pending consent with the demo step; every bank may answer either way."""
    if consent.status == ConsentStatus.PENDING:
        consent = consent_approve_demo(consent=consent)
    assert consent.status == ConsentStatus.AUTHORIZED, (bank_code, consent.status)
    assert consent.bank_consent_id
    return consent


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("bank_code", BANK_CODES)
def test_full_consent_and_data_flow_over_http(live_banks, make_user, settings, bank_code):
    client_id = "team260-1"
    user = make_user(client_id=client_id)  # that demo client at every bank
    truth = client_bank_truth(client_id, bank_code)

    with correlation_scope("flow-" + bank_code):
        consent = consent_ensure(user=user, bank_code=bank_code, kind=ConsentKind.ACCOUNTS)
        if bank_code == "sbank":
            assert consent.status == ConsentStatus.PENDING  # SBank approves manually
            assert consent.request_id.startswith("req-")
        else:
            assert consent.status == ConsentStatus.AUTHORIZED
        consent = _authorized(consent, bank_code=bank_code)
        assert consent.bank_consent_id.startswith("consent-")
        # Reuse: a second ensure returns the same consent.
        assert consent_ensure(user=user, bank_code=bank_code, kind=ConsentKind.ACCOUNTS) == consent

        client = bank_client_for(bank_code, user=user)
        accounts = client.list_accounts(client_id=client_id, consent_id=consent.bank_consent_id)
        assert [a.account_id for a in accounts] == [item["accountId"] for item in truth["accounts"]]
        assert accounts, "the sandbox gives every pool client at least one account"
        account = accounts[0]

        balance = client.get_balances(
            client_id=client_id, account_id=account.account_id, consent_id=consent.bank_consent_id
        )
        assert balance.available == Decimal(truth["balances"][account.account_id])

        page = client.get_transactions_page(
            client_id=client_id,
            account_id=account.account_id,
            consent_id=consent.bank_consent_id,
            page=1,
            limit=20,
        )
        expected = truth["transactions"][account.account_id]
        assert [t.transaction_id for t in page.transactions] == [
            item["transactionId"] for item in expected[:20]
        ]
        assert page.has_next is (len(expected) > 20)
        assert page.skipped == []
        for parsed, raw in zip(page.transactions, expected[:20], strict=True):
            sign = -1 if raw["creditDebitIndicator"] == "Debit" else 1
            assert parsed.amount == sign * Decimal(raw["amount"]["amount"])

        products = client.list_products()
        assert products
        assert all(p.product_id for p in products)

        product_consent = consent_ensure(user=user, bank_code=bank_code, kind=ConsentKind.PRODUCTS)
        product_consent = _authorized(product_consent, bank_code=bank_code)
        agreements = client.list_agreements(
            client_id=client_id, product_consent_id=product_consent.bank_consent_id
        )
        assert [a.agreement_id for a in agreements] == [
            item["agreement_id"] for item in truth["agreements"]
        ]
        assert agreements, "every pool client has at least one agreement in the sandbox"
        detail = client.get_agreement(
            client_id=client_id,
            product_consent_id=product_consent.bank_consent_id,
            agreement_id=agreements[0].agreement_id,
        )
        expected_detail = truth["agreement_details"][agreements[0].agreement_id]
        assert detail.agreement_id == agreements[0].agreement_id
        assert detail.amount == Decimal(str(expected_detail["amount"]))
        assert detail.start_date is not None and detail.start_date.tzinfo is not None

    connection = BankConnection.objects.get(user=user, bank_code=bank_code)
    assert connection.consent_expires_at == consent.expires_at

    logs = list(RawApiLog.objects.filter(bank_code=bank_code).values())
    assert logs and {row["correlation_id"] for row in logs} == {"flow-" + bank_code}
    assert {row["user_id"] for row in logs} == {user.pk}
    dump = json.dumps(logs, default=str)
    assert settings.BANK_TEAM_SECRET not in dump
    assert "eyJ" not in dump  # no JWT (bank token or client token) stored anywhere


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("bank_code", BANK_CODES)
def test_both_approval_outcomes_work_at_every_bank(live_banks, make_user, bank_code):
    """SPEC §3.5: any bank may switch between auto and manual approval; the flow follows."""
    client_id = "team260-1"
    user = make_user(client_id=client_id)  # that demo client at every bank
    auto_accounts = bank_code == "sbank"  # the opposite of each bank's default
    services.set_approval_mode(
        bank_code,
        account_consents="auto" if auto_accounts else "manual",
        product_consents="manual",
    )

    consent = consent_ensure(user=user, bank_code=bank_code, kind=ConsentKind.ACCOUNTS)
    expected = ConsentStatus.AUTHORIZED if auto_accounts else ConsentStatus.PENDING
    assert consent.status == expected
    if consent.status == ConsentStatus.PENDING:
        # Polling by request id keeps answering AwaitingAuthorization (SPEC §16): still pending.
        assert consent_refresh(consent=consent).status == ConsentStatus.PENDING
    consent = _authorized(consent, bank_code=bank_code)

    product_consent = consent_ensure(user=user, bank_code=bank_code, kind=ConsentKind.PRODUCTS)
    assert product_consent.status == ConsentStatus.PENDING
    assert product_consent.bank_consent_id == ""
    product_consent = _authorized(product_consent, bank_code=bank_code)
    assert product_consent.bank_consent_id.startswith("pagc-")

    client = bank_client_for(bank_code, user=user)
    assert client.list_accounts(client_id=client_id, consent_id=consent.bank_consent_id)
    assert client.list_agreements(
        client_id=client_id, product_consent_id=product_consent.bank_consent_id
    )
