"""Output shapes of the consents API and of the banks' overview (GET /api/banks)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from banking.models import BankCode, ConnectionStatus
from banking.serializers.common import bank_code_field
from consents.models import Consent, ConsentKind, ConsentStatus
from consents.services import consent_approval_action


class ConsentListParamsSerializer(serializers.Serializer):
    """Query parameters of GET /api/consents: each validated (an unknown value is a 400)."""

    bank_code = serializers.ChoiceField(
        choices=BankCode.choices, required=False, help_text="Only this bank's consents."
    )
    kind = serializers.ChoiceField(
        choices=ConsentKind.choices, required=False, help_text="Only consents of this kind."
    )


class ConsentSerializer(serializers.ModelSerializer):
    """A consent as its owner sees it: which bank, what for, status and expiry."""

    bank_code = bank_code_field()
    bank_request_id = serializers.CharField(
        source="request_id", help_text="The bank's id of the consent request (pending ones)."
    )
    is_active = serializers.SerializerMethodField()

    class Meta:
        model = Consent
        fields = [
            "id",
            "bank_code",
            "kind",
            "status",
            "status_reason",
            "bank_consent_id",
            "bank_request_id",
            "permissions",
            "expires_at",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_is_active(self, consent: Consent) -> bool:
        from django.utils import timezone

        return (
            consent.status == "authorized"
            and bool(consent.bank_consent_id)
            and (consent.expires_at is None or consent.expires_at > timezone.now())
        )


CONSENT_STATES = ["valid", "expiring_soon", "expired", "none"]


class ConsentRenewalSerializer(serializers.Serializer):
    """A request renewing the consent in use, waiting for the user's approval at the bank."""

    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ConsentStatus.choices)
    bank_request_id = serializers.CharField(source="request_id")
    created_at = serializers.DateTimeField()


class ConsentSummarySerializer(serializers.Serializer):
    """The current consent of one kind at the bank (the authorised one, else the newest): status,
    expiry and where it stands against it, and a renewal waiting for approval."""

    id = serializers.IntegerField(source="consent.id")
    kind = serializers.ChoiceField(choices=ConsentKind.choices, source="consent.kind")
    status = serializers.ChoiceField(choices=ConsentStatus.choices, source="consent.status")
    status_reason = serializers.CharField(source="consent.status_reason")
    expires_at = serializers.DateTimeField(allow_null=True, source="consent.expires_at")
    created_at = serializers.DateTimeField(source="consent.created_at")
    state = serializers.ChoiceField(
        choices=CONSENT_STATES,
        help_text="valid | expiring_soon (within CONSENT_EXPIRY_WARNING_DAYS) | expired | none "
        "(not authorised).",
    )
    days_left = serializers.IntegerField(
        allow_null=True, help_text="Whole days until expiry (0 once expired); null if unknown."
    )
    renewal = ConsentRenewalSerializer(allow_null=True)


class ActionRequiredSerializer(serializers.Serializer):
    """What the user must do for a pending consent (consents.services.consent_approval_action)."""

    type = serializers.CharField(help_text="approve_consent")
    message = serializers.CharField()
    bank_code = serializers.CharField()
    consent_id = serializers.IntegerField()
    bank_request_id = serializers.CharField(
        allow_blank=True, help_text="The bank's id of the consent request."
    )
    approval_expires_at = serializers.DateTimeField(
        allow_null=True,
        help_text="The request expires then unless approved (CONSENT_APPROVAL_TIMEOUT_MINUTES).",
    )
    request_again_url = serializers.CharField(
        help_text="POST here to withdraw this request and start a fresh one (e.g. after "
        "approving in the bank's app, which some banks never report to FinTrack)."
    )
    approve_demo_url = serializers.CharField(
        allow_null=True, help_text="Demo mode only: approve as the bank's test client."
    )


class BankStatusSerializer(serializers.Serializer):
    """A bank, the user's connection status (with its reason and message), data freshness,
    the retry under way, and where the consents stand against their expiry."""

    bank_code = bank_code_field()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=ConnectionStatus.choices)
    status_reason = serializers.CharField(
        help_text="Machine-readable why: consent_revoked, consent_expired, approval_expired, "
        "bank_unavailable, partial_sync, … (empty when nothing needs saying)."
    )
    status_message = serializers.CharField(help_text="What the status means, for a person.")
    next_retry_at = serializers.DateTimeField(
        allow_null=True, help_text="While retrying: when the next attempt is due."
    )
    last_sync_at = serializers.DateTimeField(allow_null=True, help_text="Last run, any outcome.")
    last_success_at = serializers.DateTimeField(
        allow_null=True, help_text="When data from this bank was last fresh."
    )
    last_error = serializers.CharField(
        help_text="The stored message (status_message without "
        "the status's default text); kept for older clients."
    )
    consent_expires_at = serializers.DateTimeField(allow_null=True)
    consent_state = serializers.ChoiceField(choices=CONSENT_STATES)
    consent_days_left = serializers.IntegerField(allow_null=True)
    consent_expiring = serializers.BooleanField(
        help_text="The account or the product consent expires within the warning window."
    )
    quarantined_items = serializers.IntegerField(
        help_text="Transactions the bank sent malformed, held and retried by every sync."
    )
    consent = ConsentSummarySerializer(allow_null=True)
    product_consent = ConsentSummarySerializer(allow_null=True)
    client_id = serializers.CharField(
        allow_blank=True,
        help_text="Who you are at this bank: your connection's client id (empty: none yet).",
    )
    proposed_client_id = serializers.CharField(
        allow_null=True,
        help_text=(
            "Demo mode and no client yet: the free demo client that POST "
            "/api/banks/{bank_code}/connect without a client_id would take (not reserved); "
            "null otherwise."
        ),
    )
    action_required = serializers.SerializerMethodField(
        help_text="While the account consent waits for your approval: what to do (a connect's "
        "answer once the bank left its request pending); null otherwise."
    )

    @extend_schema_field(ActionRequiredSerializer(allow_null=True))
    def get_action_required(self, bank) -> dict | None:
        consent = bank.consent.consent if bank.consent is not None else None
        if consent is None or consent.status != ConsentStatus.PENDING:
            return None
        action = consent_approval_action(consent=consent, connection=bank.connection)
        return ActionRequiredSerializer(action).data
