"""Shapes of the connect and onboarding APIs: the connect answer, onboarding start and status."""

from rest_framework import serializers

from sync.serializers import SyncRunSerializer


class ConsentBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)


class ActionRequiredSerializer(serializers.Serializer):
    type = serializers.CharField(help_text="approve_consent")
    message = serializers.CharField()
    bank_code = serializers.CharField()
    consent_id = serializers.IntegerField()
    request_id = serializers.CharField(allow_blank=True)
    approve_demo_url = serializers.CharField(
        allow_null=True, help_text="Demo mode only: approve as the bank's test client."
    )


class BankConnectOutputSerializer(serializers.Serializer):
    bank_code = serializers.CharField()
    connection_status = serializers.CharField()
    accounts_consent = ConsentBriefSerializer()
    products_consent = ConsentBriefSerializer(allow_null=True)
    sync_started = serializers.BooleanField()
    sync_run = SyncRunSerializer(allow_null=True)
    action_required = ActionRequiredSerializer(allow_null=True)


def consent_brief(consent) -> dict | None:
    """A consent as the connect answer shows it."""
    if consent is None:
        return None
    return {
        "id": consent.pk,
        "kind": consent.kind,
        "status": consent.status,
        "expires_at": consent.expires_at,
    }


def bank_connect_payload(result) -> dict:
    """The connect answer of a BankConnectResult."""
    return {
        "bank_code": result.connection.bank_code,
        "connection_status": result.connection.status,
        "accounts_consent": consent_brief(result.accounts_consent),
        "products_consent": consent_brief(result.products_consent),
        "sync_started": result.sync_started,
        "sync_run": SyncRunSerializer(result.sync_run).data if result.sync_run else None,
        "action_required": result.action_required,
    }


# --- Onboarding ---------------------------------------------------------------------------------


class OnboardingStartInputSerializer(serializers.Serializer):
    banks = serializers.ListField(
        child=serializers.CharField(max_length=16),
        allow_empty=False,
        max_length=10,
        help_text='Bank codes, e.g. ["vbank", "abank", "sbank"]; duplicates are ignored.',
    )


class OnboardingSyncSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    step = serializers.CharField()
    progress = serializers.IntegerField()
    accounts = serializers.IntegerField()
    transactions_added = serializers.IntegerField()
    transactions_updated = serializers.IntegerField()
    agreements = serializers.IntegerField()
    error = serializers.CharField(allow_blank=True)
    error_code = serializers.CharField(allow_blank=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class OnboardingBankSerializer(serializers.Serializer):
    bank_code = serializers.CharField()
    bank_name = serializers.CharField()
    connection_status = serializers.CharField()
    consent_status = serializers.CharField(allow_null=True)
    consent_expires_at = serializers.DateTimeField(allow_null=True)
    action_required = ActionRequiredSerializer(allow_null=True)
    sync = OnboardingSyncSerializer(allow_null=True)
    syncing = serializers.BooleanField()
    last_error = serializers.CharField(allow_blank=True)
    last_success_at = serializers.DateTimeField(allow_null=True)


class OnboardingStatusSerializer(serializers.Serializer):
    step = serializers.CharField(help_text="choose_banks | consents | syncing | done")
    completed = serializers.BooleanField()
    completed_at = serializers.DateTimeField(allow_null=True)
    can_proceed = serializers.BooleanField(help_text="At least one bank is ready.")
    banks = OnboardingBankSerializer(many=True)
