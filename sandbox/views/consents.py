"""Account consents (§3, §16): request, status, revoke, client sign / authorize."""

from datetime import timedelta

from sandbox import services
from sandbox.auth import Denied, require_client_token
from sandbox.http import Invalid, detail, json_body, json_response, no_content
from sandbox.models import AccountConsent, AccountConsentRequest
from sandbox.render import naive, zoned
from sandbox.views.common import bank_view, known_client

_STATUS = {"active": "Authorized", "revoked": "Revoked", "expired": "Expired"}


@bank_view("POST")
def consent_request(request, bank):
    bank.claims(request)
    body = json_body(request, required=("client_id", "permissions"))
    permissions = body["permissions"]
    if not isinstance(permissions, list):
        raise Invalid([{"type": "list_type", "loc": ["body", "permissions"],
                        "msg": "Input should be a valid list", "input": permissions}])  # fmt: skip
    client_id = str(body["client_id"])
    if not known_client(client_id):
        raise Denied(detail(404, f"Client {client_id} not found"))
    granted_to = (
        request.headers.get("X-Requesting-Bank") or body.get("requesting_bank") or ("test_bank")
    )
    auto, _ = services.approval_modes(bank.bank)
    consent_request_row = services.consent_request_create(
        bank=bank.bank,
        client_id=client_id,
        granted_to=granted_to,
        permissions=[str(p) for p in permissions],
        reason=str(body.get("reason") or ""),
        requesting_bank_name=str(body.get("requesting_bank_name") or "Test Bank"),
        auto=auto,
        now=bank.now,
    )
    created = naive(consent_request_row.created_at)
    if auto:
        return json_response(
            {
                "request_id": consent_request_row.request_id,
                "consent_id": consent_request_row.consent.consent_id,
                "status": "approved",
                "message": "Согласие одобрено автоматически",
                "created_at": created,
                "auto_approved": True,
            }
        )
    return json_response(
        {
            "request_id": consent_request_row.request_id,
            "status": "pending",
            "message": "Запрос отправлен на одобрение",
            "created_at": created,
            "auto_approved": False,
        }
    )


def _status_body(identifier, status, created, updated, permissions, expires) -> dict:
    return {
        "data": {
            "consentId": identifier,
            "status": status,
            "creationDateTime": zoned(created),
            "statusUpdateDateTime": zoned(updated),
            "permissions": permissions,
            "expirationDateTime": zoned(expires),
        },
        "links": {"self": f"/account-consents/{identifier}"},
        "meta": {},
    }


@bank_view("GET", "DELETE")
def consent_detail(request, bank, consent_id: str):
    bank.claims(request)
    consent = AccountConsent.objects.filter(bank=bank.bank, consent_id=consent_id).first()
    if request.method == "DELETE":
        if consent is None:
            raise Denied(detail(404, "Consent not found"))
        services.consent_revoke(consent=consent, now=bank.now)
        return no_content()
    if consent is not None:
        # An over-date consent still shows Authorized; only data calls refuse it (SPEC §3.2).
        return json_response(
            _status_body(consent.consent_id, _STATUS[consent.status], consent.created_at,
                         consent.status_updated_at, consent.permissions, consent.expires_at)
        )  # fmt: skip
    pending = AccountConsentRequest.objects.filter(bank=bank.bank, request_id=consent_id).first()
    if pending is None:
        raise Denied(detail(404, "Consent not found"))
    # The template trap (SPEC §3.2, §16): a request id answers AwaitingAuthorization for ever.
    return json_response(
        _status_body(pending.request_id, "AwaitingAuthorization", pending.created_at,
                     pending.created_at, pending.permissions, bank.now + timedelta(days=90))
    )  # fmt: skip


def _decide(bank, client_id: str, request_id: str, action: str):
    if action not in ("approve", "reject"):
        raise Denied(detail(400, "Action must be 'approve' or 'reject'"))
    pending = services.pending_request(bank.bank, request_id, client_id)
    if pending is None:
        raise Denied(detail(404, f"Consent request {request_id} not found or already processed"))
    if action == "reject":
        services.consent_reject(request=pending, now=bank.now)
        return pending, None
    return pending, services.consent_approve(request=pending, now=bank.now)


@bank_view("POST")
def consent_sign(request, bank):
    client_id = require_client_token(bank.claims(request))
    body = json_body(request, required=("request_id", "action"))
    pending, consent = _decide(bank, client_id, str(body["request_id"]), str(body["action"]))
    if consent is None:
        return json_response({"request_id": pending.request_id, "status": "rejected"})
    return json_response(
        {
            "consent_id": consent.consent_id,
            "status": "active",
            "granted_to": consent.granted_to,
            "permissions": consent.permissions,
            "expires_at": naive(consent.expires_at),
            "signed_at": naive(consent.created_at),
        }
    )


@bank_view("POST")
def consent_authorize(request, bank, request_id: str):
    client_id = require_client_token(bank.claims(request))
    action = request.GET.get("action", "approve")
    pending, consent = _decide(bank, client_id, request_id, action)
    if consent is None:
        return json_response(
            {"requestId": pending.request_id, "status": "Rejected", "message": "Согласие отклонено"}
        )
    return json_response(
        {
            "consentId": consent.consent_id,
            "status": "Authorized",
            "message": "Согласие одобрено",
            "permissions": consent.permissions,
            "expiresAt": zoned(consent.expires_at),
        }
    )
