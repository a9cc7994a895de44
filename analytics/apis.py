"""Analytics API: the dashboard, the full breakdown, on-demand recomputation; and the debts
(loans and credit cards with their schedules, and the next payment)."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import services
from analytics.dashboard import analytics_breakdown_get, dashboard_get, next_payment_get
from analytics.serializers import (
    AnalyticsBreakdownSerializer,
    DashboardSerializer,
    DebtListOutputSerializer,
    NextPaymentEnvelopeSerializer,
    RecomputeAcceptedSerializer,
)
from banking.selectors.debts import debt_list, debt_totals
from fintrack.core.throttling import ScopedRateThrottle

DEBT_SOURCE_NOTE = (
    "The banks send no schedule: 'history' means derived from your instalment debits "
    "('Платеж по кредиту №…'), 'estimate' an annuity on principal, rate and term."
)
DEBT_LIST_NOTE = (
    "`remaining` is a loan account's balance (`source` loan_account), an estimate from the "
    "principal, rate, start and the instalments seen (`source` estimate, `remaining_basis` says "
    "on what), or null (`source` unknown: a credit card's balance is not reported). The schedule "
    "lists each upcoming debit on its own day. " + DEBT_SOURCE_NOTE
)


class DashboardApi(APIView):
    @extend_schema(
        responses={200: DashboardSerializer},
        summary="Everything for the main screen in one response",
        description="Served from the latest snapshot and summaries. Before the first sync the "
        'answer is 200 with `"state": "no_data"`.',
        tags=["analytics"],
    )
    def get(self, request):
        return Response(dashboard_get(user=request.user))


class AnalyticsApi(APIView):
    @extend_schema(
        responses={200: AnalyticsBreakdownSerializer},
        summary="The full analytics breakdown: every STS term, every indicator, the forecast",
        tags=["analytics"],
    )
    def get(self, request):
        return Response(analytics_breakdown_get(user=request.user))


class AnalyticsRecomputeApi(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "sync"

    @extend_schema(
        request=None,
        responses={202: RecomputeAcceptedSerializer},
        summary="Recompute the analytics snapshot (debounced, asynchronous)",
        tags=["analytics"],
    )
    def post(self, request):
        services.analytics_recompute_request(user_id=request.user.id)
        body = {"state": "scheduled", "message": "The snapshot will be recomputed shortly."}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class DebtListApi(APIView):
    @extend_schema(
        operation_id="debts_list",
        responses={200: DebtListOutputSerializer},
        summary="Your active loans and credit cards, with schedules and totals per currency",
        description=DEBT_LIST_NOTE,
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
        "next_payment is null when nothing is due. " + DEBT_SOURCE_NOTE,
        tags=["debts"],
    )
    def get(self, request):
        return Response(next_payment_get(user=request.user))
