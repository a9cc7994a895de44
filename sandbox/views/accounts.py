"""Accounts, balances and transactions (§4) with the interbank consent checks."""

from django.conf import settings

from sandbox import catalog, generator, render
from sandbox.auth import Denied
from sandbox.http import detail, json_response, query_int, server_error
from sandbox.layout import Account, bank_layout, parse_account_id
from sandbox.models import AccountConsent
from sandbox.views.common import bank_view, consent_required, known_client
from sandbox.volume import data_key

OWN_ACCESS_ONLY = "Client token required for own account access"


def _check_consent(request, bank, client_id: str, permission: str, message: str, url=None):
    consent_id = request.headers.get("X-Consent-Id")
    consent = (
        AccountConsent.objects.filter(bank=bank.bank, consent_id=consent_id).first()
        if consent_id
        else None
    )
    if (
        consent is None
        or consent.status != AccountConsent.Status.ACTIVE
        or consent.client_id != client_id
        or consent.granted_to != request.headers.get("X-Requesting-Bank")
        or permission not in consent.permissions
        or consent.expires_at <= bank.now
    ):
        raise consent_required(message, url)


def _find_account(bank, account_id: str):
    """(account, data key) of an account at this bank; 500 for a malformed id, 404 if unknown."""
    parsed = parse_account_id(account_id)
    if parsed is None:
        raise Denied(server_error())
    digit, rest = parsed
    not_found = Denied(detail(404, "Account not found"))
    if digit != catalog.BANKS[bank.bank]["digit"] or len(rest) != 5:
        raise not_found
    client_id = f"{settings.BANK_TEAM_ID}-{int(rest[:4])}"
    if not known_client(client_id):
        raise not_found
    key = data_key(client_id, bank.clock.anchor)
    layout = bank_layout(
        key.seed, client_id, bank.bank, key.anchor, key.months, key.checking_accounts
    )
    for account in layout.accounts:
        if account.account_id == account_id:
            return account, key
    raise not_found


def _guard_account(request, bank, claims, account: Account, permission, message, hole: bool):
    """Interbank: consent check. Own client: must own it. Team token without header: SPEC §1.1."""
    if request.headers.get("X-Requesting-Bank") is not None:
        _check_consent(request, bank, account.client_id, permission, message)
    elif claims["type"] == "client":
        if claims["sub"] != account.client_id:
            raise Denied(detail(404, "Account not found"))
    elif not hole:
        raise Denied(detail(401, OWN_ACCESS_ONLY))
    # else: the template's hole — a team token without X-Requesting-Bank skips the consent check.


@bank_view("GET")
def account_list(request, bank):
    claims = bank.claims(request)
    if request.headers.get("X-Requesting-Bank") is None:
        if claims["type"] != "client":
            raise Denied(detail(401, OWN_ACCESS_ONLY))
        client_id = claims["sub"]
    else:
        client_id = request.GET.get("client_id")
        if not client_id:
            raise Denied(detail(400, "client_id required for interbank requests"))
        _check_consent(
            request, bank, client_id, catalog.PERMISSIONS_ACCOUNTS,
            "Требуется согласие клиента", "/account-consents/request",
        )  # fmt: skip
    key = data_key(client_id, bank.clock.anchor)
    layout = bank_layout(
        key.seed, client_id, bank.bank, key.anchor, key.months, key.checking_accounts
    )
    return json_response(
        {
            "data": {"account": [render.account_item(a) for a in layout.accounts]},
            "links": {"self": "/accounts"},
            "meta": {"totalPages": 1},
        }
    )


@bank_view("GET")
def account_detail(request, bank, account_id: str):
    claims = bank.claims(request)
    account, _ = _find_account(bank, account_id)
    _guard_account(request, bank, claims, account, catalog.PERMISSIONS_ACCOUNTS,
                   "Требуется согласие клиента", hole=False)  # fmt: skip
    return json_response(
        {
            "data": {"account": [render.account_detail(account)]},
            "links": {"self": f"/accounts/{account_id}"},
            "meta": {"totalPages": 1},
        }
    )


@bank_view("GET")
def account_balances(request, bank, account_id: str):
    claims = bank.claims(request)
    account, key = _find_account(bank, account_id)
    _guard_account(request, bank, claims, account, catalog.PERMISSIONS_BALANCES,
                   "Требуется согласие клиента для доступа к балансу", hole=True)  # fmt: skip
    amount = generator.balance(key, account, bank.now)
    return json_response({"data": {"balance": render.balances(account, amount, bank.now)}})


@bank_view("GET")
def account_transactions(request, bank, account_id: str):
    claims = bank.claims(request)
    page = max(query_int(request, "page", 1), 1)
    limit = query_int(request, "limit", 50, low=1, high=100)
    # from_booking_date_time / to_booking_date_time are accepted and ignored, like the real bank.
    account, key = _find_account(bank, account_id)
    _guard_account(request, bank, claims, account, catalog.PERMISSIONS_TRANSACTIONS,
                   "Требуется согласие клиента для доступа к транзакциям", hole=True)  # fmt: skip
    history = generator.history(key, account, bank.now)
    total = len(history)
    pages = (total + limit - 1) // limit
    start = (page - 1) * limit
    items = [render.transaction(account, s) for s in history.slice(start, start + limit)]
    base = f"/accounts/{account_id}/transactions"
    links = {"self": f"{base}?page={page}&limit={limit}"}
    if page < pages:
        links["next"] = f"{base}?page={page + 1}&limit={limit}"
    if page > 1:
        links["prev"] = f"{base}?page={page - 1}&limit={limit}"
    return json_response(
        {
            "data": {"transaction": items},
            "links": links,
            "meta": {
                "totalPages": pages,
                "totalRecords": total,
                "currentPage": page,
                "pageSize": limit,
            },
        }
    )
