"""Output shapes of the consents API and of the banks' overview (GET /api/banks)."""

from rest_framework import serializers

from banking.models import ConnectionStatus
from consents.models import Consent, ConsentKind, ConsentStatus


class ConsentSerializer(serializers.ModelSerializer):
    """A consent as its owner sees it: which bank, what for, status and expiry."""

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
            "request_id",
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


class ConsentSummarySerializer(serializers.Serializer):
    """The newest consent of one kind at the bank: status and expiry."""

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ConsentKind.choices)
    status = serializers.ChoiceField(choices=ConsentStatus.choices)
    status_reason = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class BankStatusSerializer(serializers.Serializer):
    """A bank, the user's connection status, data freshness, last error and consent expiry."""

    bank_code = serializers.CharField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=ConnectionStatus.choices)
    last_sync_at = serializers.DateTimeField(allow_null=True, help_text="Last run, any outcome.")
    last_success_at = serializers.DateTimeField(
        allow_null=True, help_text="When data from this bank was last fresh."
    )
    last_error = serializers.CharField()
    consent_expires_at = serializers.DateTimeField(allow_null=True)
    quarantined_items = serializers.IntegerField(
        help_text="Transactions the bank sent malformed, held and retried by every sync."
    )
    consent = ConsentSummarySerializer(allow_null=True)
    product_consent = ConsentSummarySerializer(allow_null=True)
