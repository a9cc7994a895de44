"""Writes of the sandbox banks: consent requests, approvals (by API or in the bank's own app),
revocations, approval modes."""

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from sandbox.models import AccountConsent, AccountConsentRequest, ApprovalConfig, ProductConsent

CONSENT_DAYS = 365


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


def approval_modes(bank: str) -> tuple[bool, bool]:
    """(account consents auto-approved, product consents auto-approved) at the bank."""
    row = ApprovalConfig.objects.filter(bank=bank).first()
    accounts = row.account_consents_auto if row else None
    products = row.product_consents_auto if row else None
    if accounts is None:
        accounts = bank not in settings.SANDBOX_MANUAL_APPROVAL_BANKS
    if products is None:
        products = bank not in settings.SANDBOX_MANUAL_PRODUCT_APPROVAL_BANKS
    return accounts, products


def set_approval_mode(
    bank: str, *, account_consents: str | None = None, product_consents: str | None = None
) -> tuple[bool, bool]:
    """Switch a bank between "auto" and "manual" approval ("default" restores the setting)."""
    row, _ = ApprovalConfig.objects.get_or_create(bank=bank)
    modes = {"auto": True, "manual": False, "default": None}
    if account_consents is not None:
        row.account_consents_auto = modes[account_consents]
    if product_consents is not None:
        row.product_consents_auto = modes[product_consents]
    row.save()
    return approval_modes(bank)


@transaction.atomic
def consent_request_create(
    *, bank: str, client_id: str, granted_to: str, permissions: list, reason: str,
    requesting_bank_name: str, auto: bool, now: datetime,
) -> AccountConsentRequest:  # fmt: skip
    """A new consent request; auto-approved ones get their consent at once."""
    request = AccountConsentRequest.objects.create(
        request_id=new_id("req"),
        bank=bank,
        client_id=client_id,
        requesting_bank=granted_to,
        requesting_bank_name=requesting_bank_name,
        reason=reason,
        permissions=permissions,
        status=AccountConsentRequest.Status.PENDING,
        created_at=now,
    )
    if auto:
        consent_approve(request=request, now=now)
    return request


@transaction.atomic
def consent_approve(*, request: AccountConsentRequest, now: datetime) -> AccountConsent:
    """Approve a pending request: a NEW consent id, valid for a year."""
    request.status = AccountConsentRequest.Status.APPROVED
    request.processed_at = now
    request.save(update_fields=["status", "processed_at"])
    return AccountConsent.objects.create(
        consent_id=new_id("consent"),
        request=request,
        bank=request.bank,
        client_id=request.client_id,
        granted_to=request.requesting_bank,
        permissions=request.permissions,
        status=AccountConsent.Status.ACTIVE,
        created_at=now,
        status_updated_at=now,
        expires_at=now + timedelta(days=CONSENT_DAYS),
    )


def consent_reject(*, request: AccountConsentRequest, now: datetime) -> None:
    request.status = AccountConsentRequest.Status.REJECTED
    request.processed_at = now
    request.save(update_fields=["status", "processed_at"])


def pending_request(bank: str, request_id: str, client_id: str) -> AccountConsentRequest | None:
    return AccountConsentRequest.objects.filter(
        bank=bank,
        request_id=request_id,
        client_id=client_id,
        status=AccountConsentRequest.Status.PENDING,
    ).first()


def consent_revoke(*, consent: AccountConsent, now: datetime) -> None:
    consent.status = AccountConsent.Status.REVOKED
    consent.status_updated_at = now
    consent.save(update_fields=["status", "status_updated_at"])


def product_consent_create(
    *, bank: str, client_id: str, body: dict, auto: bool, valid_until: datetime, now: datetime
) -> ProductConsent:
    """A product-agreement consent request; auto-approved ones carry their `pagc-` id at once."""
    return ProductConsent.objects.create(
        request_id=new_id("pagcr"),
        consent_id=new_id("pagc") if auto else None,
        bank=bank,
        client_id=client_id,
        granted_to=str(body.get("requesting_bank")),
        read_product_agreements=bool(body.get("read_product_agreements")),
        open_product_agreements=bool(body.get("open_product_agreements")),
        close_product_agreements=bool(body.get("close_product_agreements")),
        allowed_product_types=body.get("allowed_product_types"),
        max_amount=body.get("max_amount"),
        reason=body.get("reason"),
        status=ProductConsent.Status.ACTIVE if auto else ProductConsent.Status.PENDING,
        created_at=now,
        valid_until=valid_until,
    )


def product_consent_decide(*, consent: ProductConsent, approve: bool) -> ProductConsent:
    if approve:
        consent.consent_id = new_id("pagc")
        consent.status = ProductConsent.Status.ACTIVE
    else:
        consent.status = ProductConsent.Status.REJECTED
    consent.save(update_fields=["consent_id", "status"])
    return consent


# The bank's own app (sandbox/views/app.py): the client approves or rejects there (SPEC §17).


class RequestNotPending(LookupError):
    """The client has no pending consent request with this id at this bank."""

    def __init__(self, request_id: str):
        super().__init__(f"Consent request {request_id} not found or already processed")
        self.request_id = request_id


def app_pending_requests(
    *, bank: str, client_id: str
) -> list[AccountConsentRequest | ProductConsent]:
    """The client's consent requests waiting at the bank: account ones (`req-…`), then
    product-agreement ones (`pagcr-…`), each newest first."""
    accounts = AccountConsentRequest.objects.filter(
        bank=bank, client_id=client_id, status=AccountConsentRequest.Status.PENDING
    )
    products = ProductConsent.objects.filter(
        bank=bank, client_id=client_id, status=ProductConsent.Status.PENDING
    )
    return [*accounts.order_by("-created_at", "-id"), *products.order_by("-created_at", "-id")]


@transaction.atomic
def app_request_decide(
    *, bank: str, client_id: str, request_id: str, approve: bool, now: datetime
) -> AccountConsent | ProductConsent | None:
    """The client approves or rejects one of its pending requests in the bank's own app.

    Approving an account request mints a NEW `consent-…` id that the requesting team is never
    told: its request id keeps answering AwaitingAuthorization and the demo sign route answers
    404 for it, as it is processed (SPEC §16, §17). The consent is real at the bank all the same.
    A product-agreement request is decided as its sign route does. Returns the consent (None
    after a reject); RequestNotPending when the client has no such pending request.
    """
    account_request = (
        AccountConsentRequest.objects.select_for_update()
        .filter(bank=bank, client_id=client_id, request_id=request_id,
                status=AccountConsentRequest.Status.PENDING)
        .first()
    )  # fmt: skip
    if account_request is not None:
        if not approve:
            consent_reject(request=account_request, now=now)
            return None
        return consent_approve(request=account_request, now=now)
    product_request = (
        ProductConsent.objects.select_for_update()
        .filter(bank=bank, client_id=client_id, request_id=request_id,
                status=ProductConsent.Status.PENDING)
        .first()
    )  # fmt: skip
    if product_request is None:
        raise RequestNotPending(request_id)
    consent = product_consent_decide(consent=product_request, approve=approve)
    return consent if approve else None
