"""Test/benchmark control API: faults, clock, approval modes, volumes, reset, ground truth.

Every view needs a credential (`control_auth`): a staff user's session (the admin login), or the
shared secret SANDBOX_CONTROL_TOKEN in an `X-Sandbox-Control-Token` header (tests, bench/
scripts). None is a 401, a non-staff user or a wrong token a 403. With session auth, unsafe
methods need Django's CSRF token like any form; the header is not sent by browsers on their own.
"""

import hmac
import json
from functools import wraps

from django.conf import settings
from django.core.exceptions import ValidationError
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt

from sandbox import catalog, clock, faults, services
from sandbox.ground_truth import client_bank_truth
from sandbox.http import detail, json_response
from sandbox.models import AccountConsent, AccountConsentRequest, ProductConsent
from sandbox.render import zoned
from sandbox.volume import set_client_volume, volume_for

CONTROL_TOKEN_HEADER = "X-Sandbox-Control-Token"
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")


def _token_matches(presented: str) -> bool:
    expected = settings.SANDBOX_CONTROL_TOKEN
    return bool(expected) and hmac.compare_digest(presented.encode(), expected.encode())


def control_auth(view):
    """Let a staff session or the control token through; 401 without either, 403 if wrong."""

    @csrf_exempt
    @wraps(view)
    def guarded(request, *args, **kwargs):
        presented = request.headers.get(CONTROL_TOKEN_HEADER, "")
        if presented:
            if _token_matches(presented):
                return view(request, *args, **kwargs)
            return detail(403, "Forbidden: the sandbox control token is not valid.")
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return detail(
                401,
                f"Unauthorized: the control API needs a staff session or {CONTROL_TOKEN_HEADER}.",
                headers={"WWW-Authenticate": CONTROL_TOKEN_HEADER},
            )
        if not (user.is_active and user.is_staff):
            return detail(403, "Forbidden: the control API is for staff users only.")
        if request.method not in _SAFE_METHODS:
            rejected = CsrfViewMiddleware(lambda _request: None).process_view(request, None, (), {})
            if rejected is not None:
                return detail(403, "Forbidden: CSRF check failed for a session request.")
        return view(request, *args, **kwargs)

    return guarded


def _body(request) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _clock_body() -> dict:
    state = clock.state()
    return {"now": zoned(state.now), "anchor": state.anchor.isoformat()}


@control_auth
def fault_switches(request, bank: str):
    """GET the bank's switches; POST {switch: value, …} to set them, `{"clear": true}` to clear,
    `{"revoke_consent": id}` / `{"revoke_client_consents": client_id}` to revoke at the bank."""
    if bank not in catalog.BANKS:
        return detail(404, "Not Found")
    if request.method == "POST":
        body = _body(request)
        revoked = 0
        if body.pop("clear", False):
            faults.clear_faults(bank)
        if "revoke_consent" in body:
            revoked += faults.revoke_consents(bank, consent_id=body.pop("revoke_consent"))
        if "revoke_client_consents" in body:
            revoked += faults.revoke_consents(bank, client_id=body.pop("revoke_client_consents"))
        if body.get("tokens_issued_before") == "now":
            body["tokens_issued_before"] = clock.now()
        elif isinstance(body.get("tokens_issued_before"), str):
            body["tokens_issued_before"] = parse_datetime(body["tokens_issued_before"])
        if body:
            try:
                faults.set_faults(bank, **body)
            except (ValueError, TypeError, ValidationError) as exc:
                return detail(400, str(exc))
        return json_response({**faults.describe(bank), "revoked": revoked})
    return json_response(faults.describe(bank))


@control_auth
def clock_control(request):
    """GET the clock; POST {"days"/"hours"/"minutes"/"seconds": n} to advance,
    {"freeze_at": iso} / {"freeze": true} / {"unfreeze": true}."""
    if request.method == "POST":
        body = _body(request)
        if body.get("freeze_at"):
            clock.freeze(parse_datetime(body["freeze_at"]))
        elif body.get("freeze"):
            clock.freeze()
        if body.get("unfreeze"):
            clock.unfreeze()
        step = {k: float(body[k]) for k in ("days", "hours", "minutes", "seconds") if k in body}
        if step:
            clock.advance(**step)
    return json_response(_clock_body())


@control_auth
def approval(request, bank: str):
    """POST {"account_consents": "auto"|"manual"|"default", "product_consents": …}."""
    if bank not in catalog.BANKS:
        return detail(404, "Not Found")
    if request.method == "POST":
        body = _body(request)
        services.set_approval_mode(
            bank,
            account_consents=body.get("account_consents"),
            product_consents=body.get("product_consents"),
        )
    accounts, products = services.approval_modes(bank)
    return json_response(
        {
            "bank": bank,
            "account_consents": "auto" if accounts else "manual",
            "product_consents": "auto" if products else "manual",
        }
    )


@control_auth
def volume(request, client_id: str):
    """POST {"transactions_per_year": 20000, "history_months": 12} (null = default volume)."""
    if request.method == "POST":
        body = _body(request)
        set_client_volume(
            client_id, body.get("transactions_per_year"), history_months=body.get("history_months")
        )
    per_year, months = volume_for(client_id)
    return json_response(
        {"client_id": client_id, "transactions_per_year": per_year, "history_months": months}
    )


@control_auth
def reset(request):
    """POST: drop consents, faults and overrides; the clock back to real time (or `at`)."""
    if request.method != "POST":
        return detail(405, "Method Not Allowed")
    body = _body(request)
    AccountConsent.objects.all().delete()
    AccountConsentRequest.objects.all().delete()
    ProductConsent.objects.all().delete()
    faults.clear_faults()
    from sandbox.models import ApprovalConfig, ClientVolume

    ApprovalConfig.objects.all().delete()
    ClientVolume.objects.all().delete()
    at = parse_datetime(body["at"]) if body.get("at") else None
    clock.reset(at=at)
    return json_response(_clock_body())


@control_auth
def truth(request, bank: str, client_id: str):
    """The ground truth of a client at a bank, as JSON."""
    if bank not in catalog.BANKS:
        return detail(404, "Not Found")
    return json_response(client_bank_truth(client_id, bank))
