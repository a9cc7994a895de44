"""Output shapes of the consents API."""

from rest_framework import serializers

from consents.models import Consent


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
