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

    class Meta:
        db_table = "consents"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "bank_code", "kind", "status"], name="consent_lookup"),
        ]
        constraints = [
            # One live consent per user, bank and kind: two concurrent connects must not leave
            # two consents at the bank, one of which a "revoke" would silently leave working.
            models.UniqueConstraint(
                fields=["user", "bank_code", "kind"],
                condition=Q(status__in=["pending", "authorized"]),
                name="one_live_consent_per_bank_kind",
            ),
        ]

    def __str__(self) -> str:
        bank_id = self.bank_consent_id or self.request_id
        return f"{self.bank_code}/{self.kind} {bank_id} ({self.status})"
