"""Product catalogue (§5), product-agreement consents (§6) and agreements (§7)."""

from datetime import UTC, datetime, timedelta

from django.utils.dateparse import parse_datetime

from sandbox import catalog, data, render, services
from sandbox.auth import Denied, require_client_token
from sandbox.http import Invalid, detail, json_body, json_response, missing, no_content
from sandbox.models import ProductConsent
from sandbox.views.common import bank_view, consent_required, known_client
from sandbox.volume import data_key

FLAGS = ("read_product_agreements", "open_product_agreements", "close_product_agreements")


@bank_view("GET")
def product_list(request, bank):
    # Public on the live banks (SPEC §5.1): no token needed, none checked.
    kind = request.GET.get("product_type")
    rows = [p for p in catalog.PRODUCTS[bank.bank] if kind is None or p[1] == kind]
    return json_response({"data": {"product": [render.product(p) for p in rows]}})


@bank_view("GET")
def product_detail(request, bank, product_id: str):
    for row in catalog.PRODUCTS[bank.bank]:
        if row[0] == product_id:
            product_id, kind, name, description, rate, minimum, _, term = row
            # Stringified unconditionally here: zero stays "0.00", missing becomes "None".
            return json_response(
                {
                    "data": {
                        "productId": product_id,
                        "productType": kind,
                        "productName": name,
                        "description": description,
                        "interestRate": f"{rate:.2f}" if rate is not None else "None",
                        "minAmount": f"{minimum:.2f}" if minimum is not None else "None",
                        "termMonths": term,
                    }
                }
            )
    raise Denied(detail(404, "Product not found"))


def _valid_until(body: dict, now: datetime) -> datetime:
    raw = body.get("valid_until")
    parsed = parse_datetime(raw) if isinstance(raw, str) else None
    if parsed is None:
        return now + timedelta(days=365)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@bank_view("POST")
def product_consent_request(request, bank):
    bank.claims(request)
    client_id = request.GET.get("client_id")
    errors = [missing("query", "client_id")] if client_id is None else []
    try:
        body = json_body(request, required=("requesting_bank", "client_id"))
    except Invalid as error:
        errors += error.errors
    if errors:
        raise Invalid(errors)
    if not known_client(client_id):
        raise Denied(detail(404, f"Client {client_id} not found"))
    if not any(body.get(flag) is True for flag in FLAGS):
        raise Denied(detail(400, "At least one permission must be requested"))
    _, auto = services.approval_modes(bank.bank)
    consent = services.product_consent_create(
        bank=bank.bank, client_id=client_id, body=body, auto=auto,
        valid_until=_valid_until(body, bank.now), now=bank.now,
    )  # fmt: skip
    return json_response(
        {
            "request_id": consent.request_id,
            "consent_id": consent.consent_id,
            "status": "approved" if auto else "pending",
            "auto_approved": auto,
            "message": "Согласие одобрено автоматически"
            if auto
            else "Запрос отправлен на одобрение",
            "valid_until": render.zoned(consent.valid_until),
        }
    )


def _consent_body(consent: ProductConsent) -> dict:
    return {
        "consent_id": consent.consent_id,
        "granted_to": consent.granted_to,
        "status": consent.status,
        **{flag: getattr(consent, flag) for flag in FLAGS},
        "allowed_product_types": consent.allowed_product_types,
        "max_amount": consent.max_amount,
        "current_total_opened": consent.current_total_opened,
        "created_at": render.naive(consent.created_at),
        "valid_until": render.naive(consent.valid_until),
    }


@bank_view("GET", "DELETE")
def product_consent_detail(request, bank, consent_id: str):
    bank.claims(request)
    rows = ProductConsent.objects.filter(bank=bank.bank)
    consent = (
        rows.filter(request_id=consent_id).first()
        if consent_id.startswith("pagcr-")
        else rows.filter(consent_id=consent_id).first()
    )
    if consent is None:
        raise Denied(detail(404, "Consent not found"))
    if request.method == "DELETE":
        consent.status = ProductConsent.Status.REVOKED
        consent.save(update_fields=["status"])
        return no_content()
    return json_response(_consent_body(consent))


@bank_view("POST")
def product_consent_sign(request, bank):
    client_id = require_client_token(bank.claims(request))
    body = json_body(request, required=("request_id", "action"))
    request_id, action = str(body["request_id"]), body["action"]
    if action not in ("approve", "reject"):
        raise Denied(detail(400, "Action must be 'approve' or 'reject'"))
    consent = ProductConsent.objects.filter(
        bank=bank.bank, request_id=request_id, client_id=client_id,
        status=ProductConsent.Status.PENDING,
    ).first()  # fmt: skip
    if consent is None:
        raise Denied(detail(404, f"Consent request {request_id} not found or already processed"))
    services.product_consent_decide(consent=consent, approve=action == "approve")
    if action == "reject":
        return json_response({"request_id": request_id, "status": "rejected"})
    return json_response(_consent_body(consent))


def _agreements(request, bank):
    claims = bank.claims(request)
    if request.headers.get("X-Requesting-Bank") is None:
        if claims["type"] != "client":
            raise Denied(detail(401, "Client token required for own account access"))
        client_id = claims["sub"]
    else:
        client_id = request.GET.get("client_id")
        if not client_id:
            raise Denied(detail(400, "client_id required for interbank requests"))
        consent_id = request.headers.get("X-Product-Agreement-Consent-Id")
        consent = (
            ProductConsent.objects.filter(bank=bank.bank, consent_id=consent_id).first()
            if consent_id
            else None
        )
        if (
            consent is None
            or consent.status != ProductConsent.Status.ACTIVE
            or consent.client_id != client_id
            or consent.granted_to != request.headers.get("X-Requesting-Bank")
            or not consent.read_product_agreements
            or consent.valid_until <= bank.now
        ):
            raise consent_required(
                "Требуется согласие клиента на доступ к договорам",
                "/product-agreement-consents/request",
            )
    key = data_key(client_id, bank.clock.anchor)
    return key, data.bank_layout(key, bank.bank).agreements


@bank_view("GET")
def agreement_list(request, bank):
    _key, agreements = _agreements(request, bank)
    return json_response(
        {
            "data": [render.agreement_item(a) for a in agreements],
            "meta": {"total": len(agreements)},
        }
    )


@bank_view("GET")
def agreement_detail(request, bank, agreement_id: str):
    key, agreements = _agreements(request, bank)
    for agreement in agreements:
        if agreement.agreement_id == agreement_id:
            body = data.agreement_detail(key, bank.bank, agreement, bank.now)
            return json_response({"data": body})
    raise Denied(detail(404, "Agreement not found"))
