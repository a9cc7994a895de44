"""Consents FinTrack holds at each bank: account data (SPEC §3) and product agreements (§6)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from fintrack.core.models import TimeStampedModel


class ConsentKind(models.TextChoices):
    ACCOUNTS = "accounts", "Accounts, balances, transactions"
    PRODUCTS = "products", "Product agreements"


class ConsentStatus(models.TextChoices):
    PENDING = "pending", "Pending approval"
    AUTHORIZED = "authorized", "Authorized"
    REJECTED = "rejected", "Rejected"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"
    # Replaced by a renewal once the new consent was authorised (then revoked at the bank).
    SUPERSEDED = "superseded", "Superseded by a renewal"


class Consent(TimeStampedModel):
    """One consent request at a bank and, once approved, the consent id data calls send."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="consents"
    )
    bank_code = models.CharField(max_length=16)
    kind = models.CharField(max_length=16, choices=ConsentKind.choices)
    bank_consent_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    request_id = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=16, choices=ConsentStatus.choices)
    permissions = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    status_reason = models.CharField(max_length=255, blank=True, default="")
    raw_response = models.JSONField(default=dict, blank=True)
    renews = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="renewals",
        help_text="The authorised consent this request renews; it stays in use until this one is.",
    )

    class Meta:
        db_table = "consents"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "bank_code", "kind", "status"], name="consent_lookup"),
        ]
        constraints = [
            # At most one authorised and one pending consent per user, bank and kind: two
            # concurrent connects must not leave two consents at the bank, one of which a
            # "revoke" would silently leave working. A renewal is the pending one while the old
            # consent stays authorised, so syncing has no gap.
            models.UniqueConstraint(
                fields=["user", "bank_code", "kind"],
                condition=Q(status="authorized"),
                name="one_authorized_consent_per_bank_kind",
            ),
            models.UniqueConstraint(
                fields=["user", "bank_code", "kind"],
                condition=Q(status="pending"),
                name="one_pending_consent_per_bank_kind",
            ),
        ]

    def __str__(self) -> str:
        bank_id = self.bank_consent_id or self.request_id
        return f"{self.bank_code}/{self.kind} {bank_id} ({self.status})"
