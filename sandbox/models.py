"""The sandbox banks' own state: clock, switches, consents. Never FinTrack's tables."""

from django.db import models

BANK_CHOICES = [("vbank", "VBank"), ("abank", "ABank"), ("sbank", "SBank")]


class SandboxClock(models.Model):
    """Singleton row: the sandbox's now (real time plus an offset, or frozen) and history anchor."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    offset_seconds = models.FloatField(default=0)
    frozen_at = models.DateTimeField(null=True, blank=True)
    anchor_date = models.DateField(help_text="Generated history runs backwards from this date.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "sandbox clock"

    def __str__(self) -> str:
        return f"clock (offset {self.offset_seconds}s, frozen at {self.frozen_at})"


class FaultConfig(models.Model):
    """Fault switches of one sandbox bank; a missing row means no faults."""

    bank = models.CharField(max_length=16, choices=BANK_CHOICES, unique=True)
    latency_ms = models.PositiveIntegerField(default=0)
    error_rate = models.FloatField(default=0, help_text="Share of requests answered 5xx.")
    error_statuses = models.CharField(max_length=64, default="500,502,503")
    rate_limit_rate = models.FloatField(default=0, help_text="Share answered 429.")
    retry_after_seconds = models.PositiveIntegerField(default=1)
    hang_rate = models.FloatField(default=0, help_text="Share of requests that hang.")
    hang_seconds = models.FloatField(default=15)
    malformed_rate = models.FloatField(default=0, help_text="Share of 200 bodies truncated.")
    token_max_age_seconds = models.PositiveIntegerField(null=True, blank=True)
    tokens_issued_before = models.DateTimeField(null=True, blank=True)
    rng_seed = models.IntegerField(default=0, help_text="Seed of the fault dice, for replays.")
    # Transaction pages only (sandbox.faults.transaction_page).
    short_page_rate = models.FloatField(default=0, help_text="Share of pages served rows short.")
    early_end_rate = models.FloatField(
        default=0, help_text="Share of pages before the last served without links.next."
    )
    repeat_page_rate = models.FloatField(
        default=0, help_text="Share of listings stuck repeating a page (links.next not advancing)."
    )
    malformed_row_rate = models.FloatField(
        default=0, help_text="Share of rows served with a malformed amount while the switches stay."
    )
    oversized_page_rate = models.FloatField(
        default=0, help_text="Share of pages served with far more items than the limit."
    )
    oversized_page_items = models.PositiveIntegerField(
        default=200_000, help_text="Items of an oversized page (at most 1,000,000)."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"faults of {self.bank}"


class ApprovalConfig(models.Model):
    """Per-bank consent approval mode; null fields fall back to the settings default."""

    bank = models.CharField(max_length=16, choices=BANK_CHOICES, unique=True)
    account_consents_auto = models.BooleanField(null=True, blank=True)
    product_consents_auto = models.BooleanField(null=True, blank=True)

    def __str__(self) -> str:
        return f"approval at {self.bank}"


class ClientVolume(models.Model):
    """Per-client data volume override (transactions per account per year, months of history)."""

    client_id = models.CharField(max_length=64, unique=True)
    transactions_per_year = models.PositiveIntegerField()
    history_months = models.PositiveSmallIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.client_id}: {self.transactions_per_year}/year"


class AccountConsentRequest(models.Model):
    """An account-consent request (`req-…`); approval creates an AccountConsent."""

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"

    request_id = models.CharField(max_length=32, unique=True)
    bank = models.CharField(max_length=16, choices=BANK_CHOICES)
    client_id = models.CharField(max_length=64)
    requesting_bank = models.CharField(max_length=64)
    requesting_bank_name = models.CharField(max_length=200, blank=True)
    reason = models.TextField(blank=True)
    permissions = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices)
    created_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.request_id


class AccountConsent(models.Model):
    """An account consent (`consent-…`) granted to a requesting bank."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        REVOKED = "revoked"
        EXPIRED = "expired"

    consent_id = models.CharField(max_length=32, unique=True)
    request = models.OneToOneField(
        AccountConsentRequest, on_delete=models.CASCADE, related_name="consent"
    )
    bank = models.CharField(max_length=16, choices=BANK_CHOICES)
    client_id = models.CharField(max_length=64)
    granted_to = models.CharField(max_length=64)
    permissions = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices)
    created_at = models.DateTimeField()
    status_updated_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["bank", "client_id"])]

    def __str__(self) -> str:
        return self.consent_id


class ProductConsent(models.Model):
    """A product-agreement consent request (`pagcr-…`) and, once approved, consent (`pagc-…`)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        ACTIVE = "active"
        REJECTED = "rejected"
        REVOKED = "revoked"

    request_id = models.CharField(max_length=32, unique=True)
    consent_id = models.CharField(max_length=32, unique=True, null=True, blank=True)
    bank = models.CharField(max_length=16, choices=BANK_CHOICES)
    client_id = models.CharField(max_length=64)
    granted_to = models.CharField(max_length=64)
    read_product_agreements = models.BooleanField(default=False)
    open_product_agreements = models.BooleanField(default=False)
    close_product_agreements = models.BooleanField(default=False)
    allowed_product_types = models.JSONField(null=True, blank=True)
    max_amount = models.FloatField(null=True, blank=True)
    current_total_opened = models.FloatField(default=0)
    reason = models.TextField(blank=True, null=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    created_at = models.DateTimeField()
    valid_until = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.consent_id or self.request_id
