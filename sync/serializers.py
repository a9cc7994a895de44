"""Shapes of the sync APIs: sync runs, starting one, listing them, a balances refresh."""

from rest_framework import serializers

from banking.models import BankCode
from banking.serializers.common import bank_code_field
from sync.models import SyncRun


class StepErrorSerializer(serializers.Serializer):
    """An optional step (products, agreements) the run could not do; the rest was stored."""

    step = serializers.CharField(help_text="products or agreements")
    code = serializers.CharField(help_text="The bank error's code, e.g. bank_unavailable.")
    error = serializers.CharField(help_text="The bank's message, shortened to 500 characters.")
    status_code = serializers.IntegerField(allow_null=True, help_text="The bank's HTTP status.")
    retryable = serializers.BooleanField(
        help_text="True: retried alone soon (5xx, 429, timeout); false: the next sync tries again."
    )
    retry_after = serializers.FloatField(
        allow_null=True, help_text="Seconds the bank asked to wait, when it said."
    )


class SyncRunSerializer(serializers.ModelSerializer):
    bank_code = bank_code_field(source="connection.bank_code", read_only=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    eta_seconds = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="Seconds the transactions read still needs at its pace so far (pages per "
        "second), as of progress_updated_at; null until the page count is known or once done.",
    )
    step_errors = StepErrorSerializer(
        many=True,
        read_only=True,
        help_text="Optional steps this run could not do (status partial), each with its error.",
    )

    class Meta:
        model = SyncRun
        fields = [
            "id",
            "bank_code",
            "kind",
            "trigger",
            "status",
            "step",
            "phase",
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
            "step_errors",
            "correlation_id",
            "created_at",
            "started_at",
            "finished_at",
            "next_retry_at",
            "duration_seconds",
            "pages_done",
            "pages_total",
            "eta_seconds",
            "progress_updated_at",
        ]
        read_only_fields = fields


class SyncRunDetailSerializer(SyncRunSerializer):
    """One run as GET /api/sync-runs/{id} answers it: with the version its long-poll waits on."""

    version = serializers.CharField(
        read_only=True,
        help_text="Opaque version of this answer (also its ETag): send it back as ?since= to "
        "wait for the next change.",
    )

    class Meta(SyncRunSerializer.Meta):
        fields = [*SyncRunSerializer.Meta.fields, "version"]
        read_only_fields = fields


class SyncStartOutputSerializer(serializers.Serializer):
    sync_run_id = serializers.IntegerField()
    sync_run = SyncRunSerializer()


class SyncRunListQuerySerializer(serializers.Serializer):
    bank_code = serializers.ChoiceField(
        choices=BankCode.choices, required=False, help_text="Only this bank's runs."
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)


class SyncRunStartedOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    connection_id = serializers.IntegerField()
    bank_code = bank_code_field()
    kind = serializers.CharField()
    status = serializers.CharField()
    created = serializers.BooleanField(help_text="False when a run was already active.")


class BalanceRefreshOutputSerializer(serializers.Serializer):
    runs = SyncRunStartedOutputSerializer(many=True)
