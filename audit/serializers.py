"""Shapes of the staff raw-log API."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audit.models import RawApiLog
from fintrack.core.schema import BankCodeField


class RawLogSameAsSerializer(serializers.Serializer):
    """The call that stored this response's body first (bodies are stored once per endpoint)."""

    id = serializers.IntegerField(
        allow_null=True, help_text="Its raw-log row; null once retention removed it."
    )
    exchange_id = serializers.UUIDField()
    created_at = serializers.DateTimeField()


class RawLogOutputSerializer(serializers.ModelSerializer):
    """One half of a bank exchange as stored: redacted headers and payload, untouched otherwise.

    `payload` is the body whether this row holds it or shares it with earlier identical
    responses; `same_as` then names the first of them (null when this row stored it)."""

    bank_code = BankCodeField()
    user_id = serializers.IntegerField(allow_null=True)
    payload = serializers.JSONField(source="body_payload", allow_null=True)
    headers = serializers.JSONField()
    same_as = serializers.SerializerMethodField()

    class Meta:
        model = RawApiLog
        fields = [
            "id",
            "created_at",
            "user_id",
            "bank_code",
            "direction",
            "method",
            "endpoint",
            "status_code",
            "duration_ms",
            "error",
            "correlation_id",
            "exchange_id",
            "headers",
            "payload",
            "same_as",
        ]
        read_only_fields = fields

    @extend_schema_field(RawLogSameAsSerializer(allow_null=True))
    def get_same_as(self, obj: RawApiLog):
        # Set on each row of a page by the API (audit.selectors.raw_log_same_as, one query).
        same_as = getattr(obj, "same_as", None)
        return RawLogSameAsSerializer(same_as).data if same_as is not None else None


class AuditErrorSerializer(serializers.Serializer):
    """The one error shape of every API error."""

    code = serializers.CharField()
    message = serializers.CharField()
    extra = serializers.DictField()
