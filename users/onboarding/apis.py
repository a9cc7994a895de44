"""Connect and onboarding APIs: connect a bank, the demo approval, onboarding start and status.

Status codes:
- POST /api/banks/{bank_code}/connect → 202 with the consents and the first run when the bank
  authorised access at once; 202 with `action_required` while a consent awaits the user's approval
  (connecting again re-polls it, idempotently); 409 `already_connected` when the bank is connected
  with an authorised consent (use /sync); 404 `unknown_bank`.
- POST /api/consents/{consent_id}/approve-demo → 200 with the consent (an approved accounts
  consent starts the first sync); 403 when demo signing is off; 409 when not pending.
- POST /api/onboarding/start → 202 with the status; GET /api/onboarding/status → 200 (a read).
"""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from consents.selectors import consent_get
from consents.serializers import ConsentSerializer
from fintrack.core.throttling import ScopedRateThrottle
from users.onboarding import services
from users.onboarding.serializers import (
    BankConnectOutputSerializer,
    OnboardingStartInputSerializer,
    OnboardingStatusSerializer,
    bank_connect_payload,
)

BANK_CODE_PARAMETER = OpenApiParameter(
    "bank_code", str, OpenApiParameter.PATH, description="vbank, abank or sbank"
)
ERROR_RESPONSE = OpenApiResponse(description='Standard error: {"code", "message", "extra"}')
CONSENT_ERRORS = {
    404: OpenApiResponse(description="No such consent of this user."),
    502: OpenApiResponse(description="The bank refused or failed the request."),
    503: OpenApiResponse(description="The bank is unavailable."),
}


class BankConnectApi(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "sync"

    @extend_schema(
        request=None,
        parameters=[BANK_CODE_PARAMETER],
        responses={
            202: BankConnectOutputSerializer,
            404: ERROR_RESPONSE,
            409: ERROR_RESPONSE,
            502: ERROR_RESPONSE,
            503: ERROR_RESPONSE,
        },
        summary="Connect a bank: request consents; start the first sync once authorised",
        tags=["sync"],
    )
    def post(self, request, bank_code: str):
        result = services.bank_connect(user=request.user, bank_code=bank_code)
        return Response(bank_connect_payload(result), status=status.HTTP_202_ACCEPTED)


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
            **CONSENT_ERRORS,
        },
        tags=["consents"],
    )
    def post(self, request, consent_id: int):
        consent = consent_get(user=request.user, consent_id=consent_id)
        # A bank error propagates: the exception handler renders it as 502/503.
        consent, _run = services.consent_approve_demo_and_sync(consent=consent)
        return Response(ConsentSerializer(consent).data)


class OnboardingStartApi(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "sync"

    @extend_schema(
        request=OnboardingStartInputSerializer,
        responses={202: OnboardingStatusSerializer, 400: OpenApiResponse(description="Error")},
        summary="Start onboarding: connect the chosen banks",
        tags=["onboarding"],
    )
    def post(self, request):
        serializer = OnboardingStartInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.onboarding_start(user=request.user, bank_codes=serializer.validated_data["banks"])
        body = services.onboarding_status(user=request.user)
        return Response(OnboardingStatusSerializer(body).data, status=status.HTTP_202_ACCEPTED)


class OnboardingStatusApi(APIView):
    @extend_schema(
        responses={200: OnboardingStatusSerializer},
        summary="Onboarding progress per bank, and whether the user may proceed",
        tags=["onboarding"],
    )
    def get(self, request):
        body = services.onboarding_status(user=request.user)
        return Response(OnboardingStatusSerializer(body).data)
