"""Consents API: list the user's consents, revoke one, and the demo-only approve step."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from banking.clients.errors import BankError
from banking.exceptions import application_error_from_bank_error
from consents.models import ConsentKind
from consents.selectors import consent_get, consent_list
from consents.serializers import ConsentSerializer
from consents.services import consent_revoke
from fintrack.core.exceptions import ValidationFailed
from sync.services import consent_approve_demo_and_sync

_ERRORS = {
    404: OpenApiResponse(description="No such consent of this user."),
    502: OpenApiResponse(description="The bank refused or failed the request."),
    503: OpenApiResponse(description="The bank is unavailable."),
}


class ConsentListApi(APIView):
    @extend_schema(
        operation_id="consents_list",
        parameters=[
            OpenApiParameter("bank_code", str, description="Only this bank's consents."),
            OpenApiParameter("kind", str, enum=ConsentKind.values, description="Consent kind."),
        ],
        responses={200: ConsentSerializer(many=True)},
        tags=["consents"],
    )
    def get(self, request):
        kind = request.query_params.get("kind") or None
        if kind is not None and kind not in ConsentKind.values:
            raise ValidationFailed(
                f"kind: must be one of {', '.join(ConsentKind.values)}.",
                extra={"fields": {"kind": [f"Unknown kind {kind!r}."]}},
            )
        consents = consent_list(
            user=request.user, bank_code=request.query_params.get("bank_code") or None, kind=kind
        )
        return Response(ConsentSerializer(consents, many=True).data)


class ConsentRevokeApi(APIView):
    @extend_schema(
        operation_id="consents_revoke",
        request=None,
        responses={200: ConsentSerializer, **_ERRORS},
        tags=["consents"],
    )
    def post(self, request, consent_id: int):
        consent = consent_get(user=request.user, consent_id=consent_id)
        try:
            consent = consent_revoke(consent=consent)
        except BankError as exc:
            raise application_error_from_bank_error(exc) from exc
        return Response(ConsentSerializer(consent).data)


class ConsentApproveDemoApi(APIView):
    @extend_schema(
        operation_id="consents_approve_demo",
        summary="Demo only: approve a pending consent as the bank's test client (SPEC §3.4)",
        description=(
            "Stands in for approving in the bank's own app. Approving an accounts consent of a "
            "connected bank starts its first sync (see GET /api/onboarding/status)."
        ),
        request=None,
        responses={
            200: ConsentSerializer,
            403: OpenApiResponse(description="Demo self-signing is disabled on this server."),
            409: OpenApiResponse(description="The consent is not waiting for approval."),
            **_ERRORS,
        },
        tags=["consents"],
    )
    def post(self, request, consent_id: int):
        consent = consent_get(user=request.user, consent_id=consent_id)
        try:
            consent, _run = consent_approve_demo_and_sync(consent=consent)
        except BankError as exc:
            raise application_error_from_bank_error(exc) from exc
        return Response(ConsentSerializer(consent).data)
