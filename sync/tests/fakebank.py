"""A bank faked with `responses`: payloads shaped like shared/bank-api/examples, one account."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import responses

from banking.models import BankToken
from consents.models import Consent, ConsentKind, ConsentStatus

BASE = "https://vbank.test"
ACCOUNT_ID = "acc-3846"


def bank_settings(settings) -> None:
    """Point vbank at the fake host and store a valid bank token, so no token call is made."""
    from banking.services import tokens

    settings.BANKS = {**settings.BANKS, "vbank": {"name": "Virtual Bank", "base_url": BASE}}
    settings.BANK_RETRY_BACKOFF_SECONDS = 0.0
    settings.BANK_RETRY_MAX_SLEEP_SECONDS = 0.0
    tokens._cache.clear()
    now = datetime.now(UTC)
    BankToken.objects.update_or_create(
        bank_code="vbank",
        defaults={
            "access_token": "test-token",
            "expires_at": now + timedelta(hours=20),
            "last_refreshed_at": now,
        },
    )


def authorised_consents(user, *, products: bool = True) -> None:
    Consent.objects.create(
        user=user,
        bank_code="vbank",
        kind=ConsentKind.ACCOUNTS,
        bank_consent_id="consent-1",
        status=ConsentStatus.AUTHORIZED,
        expires_at=datetime.now(UTC) + timedelta(days=300),
    )
    if products:
        Consent.objects.create(
            user=user,
            bank_code="vbank",
            kind=ConsentKind.PRODUCTS,
            bank_consent_id="pagc-1",
            status=ConsentStatus.AUTHORIZED,
            expires_at=datetime.now(UTC) + timedelta(days=300),
        )


def accounts_body() -> dict:
    return {
        "data": {
            "account": [
                {
                    "accountId": ACCOUNT_ID,
                    "status": "Enabled",
                    "currency": "RUB",
                    "accountType": "Personal",
                    "accountSubType": "Checking",
                    "nickname": "Checking счет",
                    "openingDate": "2024-10-30",
                    "account": [
                        {
                            "schemeName": "RU.CBR.PAN",
                            "identification": "4081781027506084636",
                            "name": "Пенсионеров Пенсионер",
                        }
                    ],
                }
            ]
        },
        "links": {"self": "/accounts"},
        "meta": {"totalPages": 1},
    }


def balances_body(amount: str = "121398.37") -> dict:
    item = {
        "accountId": ACCOUNT_ID,
        "dateTime": "2025-11-26T09:30:59.151865Z",
        "amount": {"amount": amount, "currency": "RUB"},
        "creditDebitIndicator": "Credit",
    }
    return {
        "data": {
            "balance": [{**item, "type": "InterimAvailable"}, {**item, "type": "InterimBooked"}]
        }
    }


def tx(tx_id: str, when: datetime, amount: str = "100.00", *, status: str = "Booked", **extra):
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "accountId": ACCOUNT_ID,
        "transactionId": tx_id,
        "amount": {"amount": amount, "currency": "RUB"},
        "creditDebitIndicator": extra.pop("indicator", "Debit"),
        "status": status,
        "bookingDateTime": stamp,
        "valueDateTime": stamp,
        "transactionInformation": extra.pop("information", "🏪 Продукты"),
        "bankTransactionCode": {"code": "IssuedDebitTransfer"},
        "merchant": None,
        "transactionLocation": None,
        "card": None,
        "counterparty": None,
        **extra,
    }


def page_body(items: list[dict], *, page: int, has_next: bool, limit: int = 100) -> dict:
    links = {"self": f"/accounts/{ACCOUNT_ID}/transactions?page={page}&limit={limit}"}
    if has_next:
        links["next"] = f"/accounts/{ACCOUNT_ID}/transactions?page={page + 1}&limit={limit}"
    return {
        "data": {"transaction": items},
        "links": links,
        "meta": {"totalPages": page + int(has_next), "currentPage": page, "pageSize": limit},
    }


def add_accounts_and_balances(mock, *, amount: str = "121398.37") -> None:
    mock.add(responses.GET, f"{BASE}/accounts", json=accounts_body())
    mock.add(responses.GET, f"{BASE}/accounts/{ACCOUNT_ID}/balances", json=balances_body(amount))


def add_page(mock, items, *, page: int, has_next: bool, status: int = 200) -> None:
    url = re.compile(rf"{re.escape(BASE)}/accounts/{ACCOUNT_ID}/transactions\?.*\bpage={page}\b.*")
    if status != 200:
        mock.add(responses.GET, url, body="<html>Bad Gateway</html>", status=status)
    else:
        mock.add(responses.GET, url, json=page_body(items, page=page, has_next=has_next))


def loan_agreement(account_number: str = "455d5d7a74bb3be416") -> dict:
    """An active loan as the agreements list shows it (SPEC §7.1), on `account_number`."""
    return {
        "agreement_id": "agr-2f189c66585e",
        "product_id": "prod-8c41d07e5a93",
        "product_name": "Ипотека",
        "product_type": "loan",
        "amount": 1800000.0,
        "status": "active",
        "start_date": "2025-11-06T19:11:27.212166",
        "end_date": "2045-07-24T19:11:27.209950",
        "account_number": account_number,
    }


def add_agreements(mock, items: list[dict] | None = None) -> None:
    mock.add(responses.GET, f"{BASE}/product-agreements", json={"data": items or [], "meta": {}})


def add_products(mock) -> None:
    mock.add(
        responses.GET,
        f"{BASE}/products",
        json={
            "data": {
                "product": [
                    {
                        "productId": "prod-8c41d07e5a93",
                        "productType": "loan",
                        "productName": "Ипотека VBank 9.3%",
                        "description": "",
                        "interestRate": "9.30",
                        "minAmount": "100000.00",
                        "maxAmount": None,
                        "termMonths": 240,
                    }
                ]
            }
        },
    )


# Any page of the one account's transactions (a `responses` callback answers them all).
TRANSACTIONS_URL = re.compile(rf"{re.escape(BASE)}/accounts/{ACCOUNT_ID}/transactions\?.*")


def run_sync(connection):
    """A new run of `connection`, executed here; the finished run."""
    from sync.models import SyncRun
    from sync.services import sync_run_execute

    run = SyncRun.objects.create(connection=connection, user_id=connection.user_id)
    sync_run_execute(sync_run_id=run.pk)
    run.refresh_from_db()
    return run


def sync_with(connection, transactions, *, products: bool = True):
    """One sync of `connection` against this fake VBank: its accounts and balances, every
    transactions page answered by the callback `transactions`, the catalogue (a first sync asks
    for it: `products`) and the agreements, each asked for; the finished run."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        add_accounts_and_balances(mock)
        mock.add_callback(responses.GET, TRANSACTIONS_URL, callback=transactions)
        if products:
            add_products(mock)
        add_agreements(mock)
        return run_sync(connection)


def money(value: str) -> Decimal:
    return Decimal(value)
