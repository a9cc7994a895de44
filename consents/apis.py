"""Consents API: list the user's consents, revoke one; the banks' overview (every configured
bank with the user's connection and newest consents). The demo approval, which starts the first
sync, is users.onboarding's."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from consents.selectors import bank_status_get, bank_status_list, consent_get, consent_list
from consents.serializers import (
    BankStatusSerializer,
    ConsentListParamsSerializer,
    ConsentSerializer,
)
from consents.services import consent_revoke

_ERRORS = {
    404: OpenApiResponse(description="No such consent of this user."),
    502: OpenApiResponse(description="The bank refused or failed the request."),
    503: OpenApiResponse(description="The bank is unavailable."),
}


class ConsentListApi(APIView):
    @extend_schema(
        operation_id="consents_list",
        parameters=[ConsentListParamsSerializer],
        responses={
            200: ConsentSerializer(many=True),
            400: OpenApiResponse(description="An unknown bank code or kind (validation_error)."),
        },
        tags=["consents"],
    )
    def get(self, request):
        params = ConsentListParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        consents = consent_list(
            user=request.user,
            bank_code=params.validated_data.get("bank_code"),
            kind=params.validated_data.get("kind"),
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
