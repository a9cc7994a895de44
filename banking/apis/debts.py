"""Debts API: loans and credit cards with their schedules, and the nearest payment."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from banking.selectors.debts import debt_list, debt_next_payment, debt_totals
from banking.serializers.debts import DebtListOutputSerializer, NextPaymentEnvelopeOutputSerializer

SOURCE_NOTE = (
    "The banks send no schedule: 'history' means derived from your instalment debits "
    "('Платеж по кредиту №…'), 'estimate' an annuity on principal, rate and term."
)


class DebtListApi(APIView):
    @extend_schema(
        operation_id="debts_list",
        responses={200: DebtListOutputSerializer},
        summary="Your active loans and credit cards, with schedules and totals per currency",
        description=SOURCE_NOTE,
        tags=["debts"],
    )
    def get(self, request):
        debts = debt_list(user=request.user)
        return Response(
            DebtListOutputSerializer({"debts": debts, "totals": debt_totals(debts)}).data
        )


class DebtNextPaymentApi(APIView):
    @extend_schema(
        operation_id="debts_next_payment",
        responses={200: NextPaymentEnvelopeOutputSerializer},
        summary="The nearest payment across all your debts (next_payment is null when none)",
        description=SOURCE_NOTE,
        tags=["debts"],
    )
    def get(self, request):
        today = timezone.now().date()
        agreement = debt_next_payment(user=request.user, today=today)
        return Response(NextPaymentEnvelopeOutputSerializer({"next_payment": agreement}).data)
