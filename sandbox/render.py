"""JSON shapes of the bank contract (SPEC §4–§7), built from generated data."""

import time
from datetime import UTC, datetime

from sandbox import catalog
from sandbox.generator import Served
from sandbox.layout import Account, Agreement

CURRENCY = "RUB"


def zoned(moment: datetime) -> str:
    """OBR-style timestamp: UTC, always six-digit microseconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def zoned_us(us: int) -> str:
    """`zoned` for microseconds since the epoch, without building a datetime (hot path)."""
    seconds, micros = divmod(us, 1_000_000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{micros:06d}Z"


def naive(moment: datetime) -> str:
    """Sandbox-style timestamp: UTC without a zone."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds")


def money(kopecks: int) -> str:
    """String with two decimals (transaction amounts are always non-negative)."""
    sign = "-" if kopecks < 0 else ""
    kopecks = abs(kopecks)
    return f"{sign}{kopecks // 100}.{kopecks % 100:02d}"


def account_item(account: Account) -> dict:
    return {
        "accountId": account.account_id,
        "status": "Enabled",
        "currency": CURRENCY,
        "accountType": "Personal" if account.subtype == "Checking" else "Business",
        "accountSubType": account.subtype,
        "nickname": f"{account.subtype} счет",
        "openingDate": account.opening_date.isoformat(),
        "account": [
            {
                "schemeName": "RU.CBR.PAN",
                "identification": account.identification,
                "name": account.holder,
            }
        ],
    }


def account_detail(account: Account) -> dict:
    return {
        "accountId": account.account_id,
        "status": "Enabled",
        "currency": CURRENCY,
        "accountType": "Personal",
        "accountSubType": account.subtype,
        "description": f"{account.subtype.lower()} account",
        "nickname": f"{account.subtype} счет",
        "openingDate": account.opening_date.isoformat(),
    }


def balances(account: Account, amount: int, now: datetime) -> list[dict]:
    return [
        {
            "accountId": account.account_id,
            "type": kind,
            "dateTime": zoned(now),
            "amount": {"amount": money(amount), "currency": CURRENCY},
            "creditDebitIndicator": "Credit",
        }
        for kind in ("InterimAvailable", "InterimBooked")
    ]


def transaction(account: Account, served: Served) -> dict:
    record = served.record
    booked = zoned_us(record.booked_us)
    merchant = location = card = None
    if record.merchant >= 0:
        merchant_id, name, mcc, category, city, address, _ = catalog.MERCHANTS[record.merchant]
        merchant = {
            "merchantId": merchant_id,
            "name": name,
            "mccCode": mcc,
            "category": category,
            "city": city,
            "country": "RUS",
            "address": address,
        }
        location = {"city": city, "country": "RUS"}
        card_id, card_number, card_name = account.card
        card = {
            "cardId": card_id,
            "cardNumber": card_number,
            "cardType": "debit",
            "cardName": card_name,
        }
    return {
        "accountId": account.account_id,
        "transactionId": (
            f"{record.transaction_id}-pending" if served.pending else record.transaction_id
        ),
        "amount": {"amount": money(record.amount), "currency": CURRENCY},
        "creditDebitIndicator": "Credit" if record.is_credit else "Debit",
        "status": "pending" if served.pending else record.status,
        "bookingDateTime": booked,
        "valueDateTime": booked,
        "transactionInformation": record.information,
        "bankTransactionCode": {"code": record.code},
        "merchant": merchant,
        "transactionLocation": location,
        "card": card,
        "counterparty": record.counterparty,
    }


def live_transaction(account: Account, served: Served) -> dict:
    """A row as the live banks send it (SPEC §17): `completed`, `01`/`02`, no counterparty."""
    record = served.record
    booked = zoned_us(record.booked_us)
    merchant = card = None
    if record.merchant >= 0:
        merchant_id, name, mcc, category, _kind = catalog.LIVE_MERCHANTS[record.merchant]
        merchant = {
            "merchantId": merchant_id,
            "name": name,
            "mccCode": mcc,
            "category": category,
            "city": account.city,
            "country": "RUS",
            "address": f"г. {account.city}",
        }
    if record.with_card and account.card is not None:
        card_id, card_number, card_name = account.card
        card = {
            "cardId": card_id,
            "cardNumber": card_number,
            "cardType": "debit",
            "cardName": card_name,
        }
    return {
        "accountId": account.account_id,
        "transactionId": record.transaction_id,
        "amount": {"amount": money(record.amount), "currency": CURRENCY},
        "creditDebitIndicator": "Credit" if record.is_credit else "Debit",
        "status": record.status,
        "bookingDateTime": booked,
        "valueDateTime": booked,
        "transactionInformation": record.information,
        "bankTransactionCode": {"code": record.code},
        "merchant": merchant,
        "transactionLocation": {"city": account.city, "country": "RUS"},
        "card": card,
        "counterparty": None,
    }


def agreement_item(agreement: Agreement) -> dict:
    return {
        "agreement_id": agreement.agreement_id,
        "product_id": agreement.product_id,
        "product_name": agreement.product_name,
        "product_type": agreement.product_type,
        "amount": agreement.amount,
        "status": agreement.status,
        "start_date": naive(agreement.start),
        "end_date": naive(agreement.end) if agreement.end else None,
        "account_number": agreement.account_number,
    }


def agreement_detail(agreement: Agreement, *, account_balance: int | None = None) -> dict:
    """The detail call's shape; `account_balance` (kopecks) overrides the layout's static one."""
    item = agreement_item(agreement)
    balance = account_balance if account_balance is not None else agreement.account_balance
    return {
        **{k: item[k] for k in ("agreement_id", "product_id", "product_name", "product_type")},
        "interest_rate": agreement.interest_rate,
        **{k: item[k] for k in ("amount", "status", "start_date", "end_date", "account_number")},
        "account_balance": balance / 100 if balance is not None else None,
    }


def _number(value) -> str | None:
    # Zero and missing values come back as null (a falsy check in the real server).
    return f"{value:.2f}" if value else None


def product(row: tuple) -> dict:
    product_id, kind, name, description, rate, minimum, maximum, term = row
    return {
        "productId": product_id,
        "productType": kind,
        "productName": name,
        "description": description,
        "interestRate": _number(rate),
        "minAmount": _number(minimum),
        "maxAmount": _number(maximum),
        "termMonths": term,
    }
