"""Shapes of the staff raw-log API."""

from rest_framework import serializers

from audit.models import RawApiLog


class RawLogOutputSerializer(serializers.ModelSerializer):
    """One half of a bank exchange as stored: redacted headers and payload, untouched otherwise."""

    bank = serializers.CharField(source="bank_code")
    user_id = serializers.IntegerField(allow_null=True)
    payload = serializers.JSONField(allow_null=True)
    headers = serializers.JSONField()

    class Meta:
        model = RawApiLog
        fields = [
            "id",
            "created_at",
            "user_id",
            "bank",
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
        ]
        read_only_fields = fields


class AuditErrorSerializer(serializers.Serializer):
    """The one error shape of every API error."""

    code = serializers.CharField()
    message = serializers.CharField()
    extra = serializers.DictField()
