"""Shapes of the connect and onboarding APIs: the connect answer, onboarding start and status."""

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from banking.services.connections import CLIENT_ID_PATTERN, CLIENT_ID_RULE
from consents.serializers import ActionRequiredSerializer, ConsentSerializer
from sync.serializers import SyncRunSerializer
from users.models import ConnectRequest

CLIENT_ID_HELP = (
    "Who you are at this bank: the client id the bank gave you, e.g. team260-57 "
    f"({CLIENT_ID_RULE}). Left out: the client this connection already has, else (in demo mode) "
    "a free demo client FinTrack proposes (GET /api/banks shows it as proposed_client_id); "
    "without demo mode it is required. One FinTrack user per client at each bank."
)


def client_id_field(**kwargs) -> serializers.CharField:
    """The bank client id as an input: the pattern in the schema, a field error when broken."""
    return serializers.CharField(
        max_length=64,
        validators=[
            RegexValidator(
                f"^{CLIENT_ID_PATTERN.pattern}$", message=f"A bank client id is {CLIENT_ID_RULE}."
            )
        ],
        help_text=CLIENT_ID_HELP,
        **kwargs,
    )


class BankConnectInputSerializer(serializers.Serializer):
    """POST /api/banks/{bank_code}/connect: an optional body."""

    client_id = client_id_field(required=False)


class ConsentBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)


class ConnectRequestBriefSerializer(serializers.Serializer):
    """A connect (or renewal, fresh request, demo approval) carried out by a worker (issue 21):
    under way, or how it ended."""

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(
        choices=ConnectRequest.Kind.choices,
        help_text="connect | renew | request_again | approve_demo: what the worker asks the bank.",
    )
    status = serializers.ChoiceField(
        choices=ConnectRequest.Status.choices,
        help_text="queued (waiting for a worker, or for its retry: next_retry_at) | running | "
        "succeeded (the bank answered: the first sync started, approval awaited, or the "
        "consents authorised: outcome) | failed (error_code, error).",
    )
    outcome = serializers.CharField(
        allow_blank=True,
        help_text="Once succeeded: sync_started | awaiting_approval | authorized.",
    )
    attempts = serializers.IntegerField()
    error_code = serializers.CharField(
        allow_blank=True,
        help_text="Once failed: bank_client_unknown, consent_rejected, bank_unavailable, "
        "consent_not_pending, worker_lost, …",
    )
    error = serializers.CharField(allow_blank=True)
    next_retry_at = serializers.DateTimeField(
        allow_null=True, help_text="While the bank is down: when the worker asks again."
    )
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class BankConnectOutputSerializer(serializers.Serializer):
    bank_code = serializers.CharField()
    connection_status = serializers.CharField(
        help_text="consent_pending with status_reason connect_requested while the worker asks "
        "the bank; then sync_in_progress/ready, consent_pending (approve), retrying or error."
    )
    status_reason = serializers.CharField(allow_blank=True)
    accounts_consent = ConsentBriefSerializer(
        allow_null=True, help_text="Null until the bank answered the request."
    )
    products_consent = ConsentBriefSerializer(allow_null=True)
    sync_started = serializers.BooleanField()
    sync_run = SyncRunSerializer(allow_null=True)
    action_required = ActionRequiredSerializer(
        allow_null=True, help_text="Once the bank left the request pending: what to do."
    )
    connect_request = ConnectRequestBriefSerializer(
        allow_null=True, help_text="The connect the worker carries out (null: done in process)."
    )
    status_url = serializers.CharField(
        help_text="GET it (reads the database only) to follow the request: a connect at "
        "/api/banks/{code}/status (or /api/onboarding/status, long-poll with ?since=version); "
        "a renewal, fresh request or demo approval at /api/connect-requests/{id}."
    )


class ConsentApproveDemoOutputSerializer(BankConnectOutputSerializer):
    """POST /api/consents/{consent_id}/approve-demo: the connect answer, with the consent."""

    consent = ConsentSerializer(
        help_text="The consent being approved, as stored now: pending until the worker has the "
        "bank's answer, then authorized."
    )


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
    bank_code = result.connection.bank_code
    return {
        "bank_code": bank_code,
        "connection_status": result.connection.status,
        "status_reason": result.connection.status_reason,
        "accounts_consent": consent_brief(result.accounts_consent),
        "products_consent": consent_brief(result.products_consent),
        "sync_started": result.sync_started,
        "sync_run": SyncRunSerializer(result.sync_run).data if result.sync_run else None,
        "action_required": result.action_required,
        "connect_request": ConnectRequestBriefSerializer(result.connect_request).data
        if result.connect_request
        else None,
        # A connect is followed by its bank's status; a renewal, fresh request or demo approval
        # of a connected bank by the request itself (the bank's status stays as it was).
        "status_url": connect_request_url(result.connect_request)
        if result.connect_request and result.connect_request.kind != ConnectRequest.Kind.CONNECT
        else f"/api/banks/{bank_code}/status",
    }


def connect_request_url(connect_request) -> str:
    return f"/api/connect-requests/{connect_request.pk}"


# --- Onboarding ---------------------------------------------------------------------------------


class OnboardingBankChoiceSerializer(serializers.Serializer):
    """One chosen bank with the user's client id there."""

    bank_code = serializers.CharField(max_length=16, help_text="vbank, abank or sbank")
    client_id = client_id_field(required=False)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "maxLength": 16, "description": "A bank code.", "example": "vbank"},
            {
                "type": "object",
                "description": "A bank code with your client id at that bank.",
                "properties": {
                    "bank_code": {"type": "string", "maxLength": 16, "example": "vbank"},
                    "client_id": {
                        "type": "string",
                        "maxLength": 64,
                        "pattern": f"^{CLIENT_ID_PATTERN.pattern}$",
                        "description": CLIENT_ID_HELP,
                        "example": "team260-57",
                    },
                },
                "required": ["bank_code"],
            },
        ]
    }
)
class OnboardingBankChoiceField(serializers.Field):
    """A bank code, or {"bank_code", "client_id"}: validated as {"bank_code", "client_id"|None}."""

    default_error_messages = {
        "invalid": 'Give a bank code or {"bank_code": …, "client_id": …}.',
    }

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = {"bank_code": data}
        if not isinstance(data, dict):
            self.fail("invalid")
        choice = OnboardingBankChoiceSerializer(data=data)
        if not choice.is_valid():
            raise serializers.ValidationError(choice.errors)
        return {
            "bank_code": choice.validated_data["bank_code"],
            "client_id": choice.validated_data.get("client_id"),
        }

    def to_representation(self, value):
        return value


class OnboardingStartInputSerializer(serializers.Serializer):
    banks = serializers.ListField(
        child=OnboardingBankChoiceField(),
        allow_empty=False,
        max_length=10,
        help_text=(
            'Bank codes, e.g. ["vbank", "abank", "sbank"] (demo clients proposed), or objects '
            'with your client id at that bank: [{"bank_code": "vbank", "client_id": '
            '"team260-57"}, "sbank"]; duplicates are ignored.'
        ),
    )

    def validate_banks(self, banks):
        client_ids: dict[str, str] = {}
        for choice in banks:
            code, client_id = choice["bank_code"], choice["client_id"]
            if client_id is None:
                continue
            if client_ids.setdefault(code, client_id) != client_id:
                raise serializers.ValidationError(f"{code} is given with two client ids.")
        return banks

    def bank_codes(self) -> list[str]:
        """The chosen banks' codes, in the user's order."""
        return [choice["bank_code"] for choice in self.validated_data["banks"]]

    def client_ids(self) -> dict[str, str]:
        """The client id given per bank code (banks without one are left out)."""
        return {
            choice["bank_code"]: choice["client_id"]
            for choice in self.validated_data["banks"]
            if choice["client_id"] is not None
        }


class OnboardingSyncSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    step = serializers.CharField()
    progress = serializers.IntegerField()
    accounts_count = serializers.IntegerField()
    transactions_added = serializers.IntegerField()
    transactions_updated = serializers.IntegerField()
    agreements_count = serializers.IntegerField()
    error = serializers.CharField(allow_blank=True)
    error_code = serializers.CharField(allow_blank=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    phase = serializers.CharField(
        allow_blank=True, help_text="A first sync: recent (newest days first), then backfill."
    )
    pages_done = serializers.IntegerField(help_text="Pages of the transactions read done.")
    pages_total = serializers.IntegerField(
        allow_null=True, help_text="Pages that read takes, once its first pages said; else null."
    )
    eta_seconds = serializers.IntegerField(
        allow_null=True,
        help_text="Seconds that read still needs at its pace so far, as of progress_updated_at.",
    )
    progress_updated_at = serializers.DateTimeField(allow_null=True)


class OnboardingHistorySerializer(serializers.Serializer):
    phase = serializers.ChoiceField(
        choices=["recent", "backfill", "done"],
        help_text="recent: the newest days being read; backfill: they are on the dashboard, the "
        "older history loads (or waits for the next sync); done: the whole history is stored.",
    )
    complete_from = serializers.DateField(
        allow_null=True, help_text="While loading: the first day whose rows are all stored."
    )


class OnboardingBankSerializer(serializers.Serializer):
    bank_code = serializers.CharField()
    bank_name = serializers.CharField()
    connection_status = serializers.CharField()
    status_reason = serializers.CharField(
        allow_blank=True, help_text="Machine-readable why of connection_status."
    )
    status_message = serializers.CharField(
        allow_blank=True, help_text="What connection_status means, for a person."
    )
    next_retry_at = serializers.DateTimeField(
        allow_null=True, help_text="While retrying: when the next attempt is due."
    )
    consent_status = serializers.CharField(allow_null=True)
    consent_expires_at = serializers.DateTimeField(allow_null=True)
    action_required = ActionRequiredSerializer(allow_null=True)
    sync = OnboardingSyncSerializer(allow_null=True)
    syncing = serializers.BooleanField()
    last_error = serializers.CharField(allow_blank=True)
    last_success_at = serializers.DateTimeField(allow_null=True)
    history = OnboardingHistorySerializer(allow_null=True)
    connect = ConnectRequestBriefSerializer(
        allow_null=True,
        help_text="The newest request of this bank a worker carries out (its kind: a connect, "
        "renewal, fresh request or demo approval) and how it went.",
    )


class OnboardingProgressSerializer(serializers.Serializer):
    percent = serializers.IntegerField(
        help_text="All chosen banks together, weighted by their transaction pages; 100 once "
        "every bank is settled (ready, failed or waiting for a new consent)."
    )
    eta_seconds = serializers.IntegerField(
        allow_null=True,
        help_text="Seconds the slowest bank still reading needs, once its page count is known.",
    )


class OnboardingStatusSerializer(serializers.Serializer):
    step = serializers.CharField(help_text="choose_banks | consents | syncing | done")
    completed = serializers.BooleanField()
    completed_at = serializers.DateTimeField(allow_null=True)
    can_proceed = serializers.BooleanField(
        help_text="At least one bank is ready, or has its newest days on the dashboard."
    )
    progress = OnboardingProgressSerializer()
    banks = OnboardingBankSerializer(many=True)
    version = serializers.CharField(
        read_only=True,
        help_text="Opaque version of this answer (also its ETag): send it back as ?since= to "
        "wait for the next change.",
    )


class OnboardingStartOutputSerializer(OnboardingStatusSerializer):
    status_url = serializers.CharField(
        read_only=True, help_text="/api/onboarding/status: follow the banks being connected."
    )


def consent_approve_demo_payload(result) -> dict:
    """The demo approval's answer of a BankConnectResult (its `consent`, as stored now)."""
    return {**bank_connect_payload(result), "consent": ConsentSerializer(result.consent).data}
