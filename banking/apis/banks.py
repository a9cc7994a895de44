"""Banks API: every configured bank with this user's connection status, and one bank's status."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from banking.selectors.connections import bank_status_get, bank_status_list
from banking.serializers.banks import BankStatusSerializer


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
