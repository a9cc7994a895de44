"""Accounts, balances and transactions (§4) with the interbank consent checks."""

from django.conf import settings

from sandbox import catalog, data, faults, paging, render
from sandbox.auth import Denied
from sandbox.http import detail, json_response, query_int, server_error
from sandbox.layout import Account
from sandbox.models import AccountConsent
from sandbox.views.common import bank_view, consent_required
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
    found = data.find_account(bank.bank, account_id, bank.clock.anchor)
    if found == "malformed":
        raise Denied(server_error())
    if found is None:
        raise Denied(detail(404, "Account not found"))
    return found


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
    layout = data.bank_layout(data_key(client_id, bank.clock.anchor), bank.bank)
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
    amount = data.balance(key, account, bank.now)
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
    history = data.history(key, account, bank.now)
    total = len(history)
    pages = (total + limit - 1) // limit
    start = (page - 1) * limit
    # Booking time is the only sort key, as at the live banks: tied rows may move between pages.
    salt = f"{settings.SANDBOX_SEED}:{account.bank}:{account.account_id}"
    served = paging.page_items(history, offset=start, limit=limit, salt=salt)
    items = [data.transaction_item(account, s) for s in served]
    base = f"/accounts/{account_id}/transactions"
    links = {"self": f"{base}?page={page}&limit={limit}"}
    if page < pages:
        links["next"] = f"{base}?page={page + 1}&limit={limit}"
    if page > 1:
        links["prev"] = f"{base}?page={page - 1}&limit={limit}"
    meta = {"totalPages": pages, "totalRecords": total, "currentPage": page, "pageSize": limit}
    if faults.page_faults_on(bank.config):
        listing = faults.TransactionListing(
            account_id=account_id, page=page, limit=limit, total=total, pages=pages,
            items=items, links=links, meta=meta,
            rows=lambda offset, count: [
                data.transaction_item(account, s)
                for s in paging.page_items(history, offset=offset, limit=count, salt=salt)
            ],
            link=lambda number: f"{base}?page={number}&limit={limit}",
        )  # fmt: skip
        faulty = faults.transaction_page(bank.config, listing)
        if faulty is not None:
            return faulty
    return json_response({"data": {"transaction": items}, "links": links, "meta": meta})
