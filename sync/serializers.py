"""Shapes of the sync APIs: sync runs, starting one, listing them, a balances refresh."""

from rest_framework import serializers

from sync.models import SyncRun


class SyncRunSerializer(serializers.ModelSerializer):
    bank_code = serializers.CharField(source="connection.bank_code", read_only=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = SyncRun
        fields = [
            "id",
            "bank_code",
            "kind",
            "trigger",
            "status",
            "step",
            "progress",
            "accounts_count",
            "balances_count",
            "transactions_added",
            "transactions_updated",
            "transactions_unchanged",
            "transactions_removed",
            "transactions_skipped",
            "agreements_count",
            "bank_calls",
            "attempts",
            "error",
            "error_code",
            "warnings",
            "correlation_id",
            "created_at",
            "started_at",
            "finished_at",
            "next_retry_at",
            "duration_seconds",
        ]
        read_only_fields = fields


class SyncStartOutputSerializer(serializers.Serializer):
    sync_run_id = serializers.IntegerField()
    sync_run = SyncRunSerializer()


class SyncRunListQuerySerializer(serializers.Serializer):
    bank = serializers.CharField(required=False, max_length=16)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)


class SyncRunStartedOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    connection_id = serializers.IntegerField()
    bank = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.CharField()
    created = serializers.BooleanField(help_text="False when a run was already active.")


class BalanceRefreshOutputSerializer(serializers.Serializer):
    runs = SyncRunStartedOutputSerializer(many=True)
