"""Output shapes of the banks API: each configured bank with the user's connection state."""

from rest_framework import serializers

from banking.models import ConnectionStatus
from consents.models import ConsentKind, ConsentStatus


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
    consent = ConsentSummarySerializer(allow_null=True)
    product_consent = ConsentSummarySerializer(allow_null=True)
