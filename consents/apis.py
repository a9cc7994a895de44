"""Consents API: list the user's consents, revoke one; the banks' overview (every configured
bank with the user's connection and newest consents). The demo approval, which starts the first
sync, is users.onboarding's."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from consents.models import ConsentKind
from consents.selectors import bank_status_get, bank_status_list, consent_get, consent_list
from consents.serializers import BankStatusSerializer, ConsentSerializer
from consents.services import consent_revoke
from fintrack.core.exceptions import ValidationFailed

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
        # A bank error propagates: the exception handler renders it as 502/503.
        consent = consent_revoke(consent=consent)
        return Response(ConsentSerializer(consent).data)


class BankListApi(APIView):
    @extend_schema(
        operation_id="banks_list",
        responses={200: BankStatusSerializer(many=True)},
        tags=["banks"],
    )
    def get(self, request):
        banks = bank_status_list(user=request.user)
        return Response(BankStatusSerializer(banks, many=True).data)


class BankStatusApi(APIView):
    @extend_schema(
        operation_id="banks_status",
        responses={
            200: BankStatusSerializer,
            404: OpenApiResponse(description="Unknown bank code (code unknown_bank)."),
        },
        tags=["banks"],
    )
    def get(self, request, bank_code: str):
        bank = bank_status_get(user=request.user, bank_code=bank_code)
        return Response(BankStatusSerializer(bank).data)
