"""Debts API: loans and credit cards with their schedules, and the nearest payment."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.dashboard import next_payment_get
from analytics.serializers import NextPaymentEnvelopeSerializer
from banking.selectors.debts import debt_list, debt_totals
from banking.serializers.debts import DebtListOutputSerializer

SOURCE_NOTE = (
    "The banks send no schedule: 'history' means derived from your instalment debits "
    "('Платеж по кредиту №…'), 'estimate' an annuity on principal, rate and term."
)
LIST_NOTE = (
    "`remaining` is a loan account's balance (`source` loan_account), an estimate from the "
    "principal, rate, start and the instalments seen (`source` estimate, `remaining_basis` says "
    "on what), or null (`source` unknown: a credit card's balance is not reported). The schedule "
    "lists each upcoming debit on its own day. " + SOURCE_NOTE
)


class DebtListApi(APIView):
    @extend_schema(
        operation_id="debts_list",
        responses={200: DebtListOutputSerializer},
        summary="Your active loans and credit cards, with schedules and totals per currency",
        description=LIST_NOTE,
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
        responses={200: NextPaymentEnvelopeSerializer},
        summary="The next payment: nearest due date, all due that day, the next 7 days, items",
        description="The one next payment analytics computes from every obligation (loan "
        "instalment parts, instalments of loans the bank does not serve, recurring bills), read "
        "from the latest snapshot: the same answer as the dashboard and /api/analytics. "
        "next_payment is null when nothing is due. " + SOURCE_NOTE,
        tags=["debts"],
    )
    def get(self, request):
        return Response(next_payment_get(user=request.user))
