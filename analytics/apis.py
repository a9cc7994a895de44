"""Analytics API: the dashboard, the full breakdown, on-demand recomputation; and the debts
(loans and credit cards with their schedules, and the next payment)."""

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import services
from analytics.dashboard import analytics_breakdown_get, dashboard_render, next_payment_get
from analytics.serializers import (
    AnalyticsBreakdownSerializer,
    DashboardSerializer,
    DebtListOutputSerializer,
    NextPaymentEnvelopeSerializer,
    RecomputeAcceptedSerializer,
)
from banking.selectors.debts import debt_list, debt_totals
from fintrack.core.conditional import conditional_get
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


NEXT_PAYMENT_EXAMPLE = {
    "date": "2026-12-03",
    "amount": "14250.00",
    "currency": "RUB",
    "due_in_7_days": "16100.00",
    "due_in_7_days_until": "2026-12-07",
    "items": [
        {
            "label": "Ипотека",
            "amount": "14250.00",
            "currency": "RUB",
            "date": "2026-12-03",
            "kind": "loan_instalment",
            "source": "agreement",
            "schedule_source": "history",
            "bank_code": "abank",
            "bank_agreement_id": "agr-2f189c66585e",
            "debt_id": 7,
        }
    ],
    "bank_agreement_id": "agr-2f189c66585e",
    "debt_id": 7,
    "label": "Ипотека",
    "bank_code": "abank",
    "overdue": False,
    "source": "history",
}
DASHBOARD_EXAMPLE = OpenApiExample(
    "Ready",
    value={
        "state": "ready",
        "message": "",
        "recomputing": False,
        "outdated": False,
        "snapshot_id": 31,
        "computed_at": "2026-12-01T15:00:05Z",
        "data_fresh_as_of": "2026-12-01T15:00:02Z",
        "currency": "RUB",
        "sts": {
            "status": "ok",
            "period": "18400.00",
            "daily": "9200.00",
            "shortfall": "0.00",
            "currency": "RUB",
            "horizon_days": 2,
            "next_income_date": "2026-12-03",
            "confidence": "high",
            "reasons": [],
        },
        "health": {
            "score": 71,
            "band": "coping",
            "indicators": [
                {
                    "code": "savings_buffer",
                    "has_data": True,
                    "value": "2.4",
                    "score": 60,
                    "band": "coping",
                    "explanation": "Savings cover 2.4 months of essential spending.",
                }
            ],
        },
        "debt": {
            "total": "850000.00",
            "monthly_service": "28500.00",
            "currency": "RUB",
            "next_payment": NEXT_PAYMENT_EXAMPLE,
        },
        "savings": {
            "total": "300000.00",
            "currency": "RUB",
            "note": "Deposits count once, at their invested sum; savings are not spendable money.",
            "items": [
                {
                    "kind": "deposit",
                    "bank_code": "sbank",
                    "bank_agreement_id": "dep-team260-1",
                    "account_id": None,
                    "name": "Вклад Надёжный",
                    "amount": "300000.00",
                    "currency": "RUB",
                    "interest_rate": "9.300",
                    "start_date": "2026-09-17",
                    "source": "agreement.principal",
                }
            ],
        },
        "totals": [
            {
                "currency": "RUB",
                "spendable_total": "121398.37",
                "savings_total": "300000.00",
                "debt_total": "850000.00",
                "updated_at": "2026-12-01T15:00:02Z",
            }
        ],
        "accounts": [
            {
                "id": 12,
                "bank_code": "vbank",
                "account_type": "checking",
                "masked_number": "**** 3846",
                "nickname": "Checking счет",
                "currency": "RUB",
                "balance": "121398.37",
                "balance_as_of": "2026-12-01T15:00:00Z",
            }
        ],
        "banks": [
            {
                "bank_code": "vbank",
                "status": "ready",
                "status_reason": "",
                "status_message": "Connected; data is up to date.",
                "next_retry_at": None,
                "last_success_at": "2026-12-01T15:00:02Z",
                "last_sync_at": "2026-12-01T15:00:02Z",
                "last_error": "",
                "consent_state": "valid",
                "consent_expires_at": "2027-12-01T14:58:40Z",
                "consent_days_left": 365,
                "product_consent_state": "valid",
                "product_consent_expires_at": "2027-12-01T14:58:41Z",
                "product_consent_days_left": 365,
                "consent_expiring": False,
            }
        ],
        "recent_transactions": [
            {
                "id": 4821,
                "account_id": 12,
                "bank_code": "vbank",
                "amount": "-512.00",
                "currency": "RUB",
                "booking_date": "2026-11-30T21:15:00Z",
                "local_date": "2026-12-01",
                "status": "booked",
                "description": "Пятёрочка - Москва",
                "merchant_name": "Пятёрочка",
                "is_own_transfer": False,
                "category_code": "groceries",
                "category_name_en": "Groceries",
                "category_name_ru": "Продукты",
            }
        ],
        "top_categories": [
            {
                "category_code": "groceries",
                "category_name_en": "Groceries",
                "category_name_ru": "Продукты",
                "currency": "RUB",
                "total": "18450.20",
            }
        ],
        "history": {
            "state": "complete",
            "complete_from": None,
            "loading_banks": [],
            "banks": [{"bank_code": "vbank", "state": "complete", "complete_from": None}],
        },
    },
    response_only=True,
    status_codes=["200"],
)
DEBTS_EXAMPLE = OpenApiExample(
    "A mortgage",
    value={
        "debts": [
            {
                "id": 7,
                "bank_code": "abank",
                "bank_agreement_id": "agr-2f189c66585e",
                "product_type": "loan",
                "product_name": "Ипотека",
                "currency": "RUB",
                "principal": "900000.00",
                "remaining": "850000.00",
                "source": "loan_account",
                "remaining_basis": "the loan account's balance",
                "is_estimate": False,
                "limit": None,
                "interest_rate": "12.500",
                "term_months": 240,
                "start_date": "2024-02-01T09:00:00Z",
                "end_date": None,
                "linked_account_id": 15,
                "monthly_payment": "28500.00",
                "next_payment_date": "2026-12-03",
                "next_payment_amount": "14250.00",
                "next_payment_source": "history",
                "payment_status": "regular",
                "payment_status_note": "",
                "last_payment_date": "2026-11-18",
                "schedule": [
                    {
                        "date": "2026-12-03",
                        "amount": "14250.00",
                        "currency": "RUB",
                        "part": 1,
                        "parts": 2,
                    }
                ],
            }
        ],
        "totals": [
            {
                "currency": "RUB",
                "remaining": "850000.00",
                "estimated": "0.00",
                "unknown_count": 0,
                "monthly_payment": "28500.00",
                "count": 1,
            }
        ],
    },
    response_only=True,
    status_codes=["200"],
)


@conditional_get
class DashboardApi(APIView):
    @extend_schema(
        responses={200: DashboardSerializer},
        examples=[DASHBOARD_EXAMPLE],
        summary="Everything for the main screen in one response",
        description="Served from the latest snapshot and summaries. Before the first sync the "
        'answer is 200 with `"state": "no_data"`.',
        tags=["analytics"],
    )
    def get(self, request):
        # Ready-made JSON (the snapshot's stored text spliced with the live part) and a cheap
        # ETag: sent as it is, not rendered again by DRF (DashboardSerializer describes it).
        answer = dashboard_render(user=request.user)
        response = HttpResponse(answer.content, content_type="application/json")
        response["ETag"] = answer.etag
        return response


@conditional_get
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


@conditional_get
class DebtListApi(APIView):
    @extend_schema(
        operation_id="debts_list",
        responses={200: DebtListOutputSerializer},
        examples=[DEBTS_EXAMPLE],
        summary="Your active loans and credit cards, with schedules and totals per currency",
        description=DEBT_LIST_NOTE,
        tags=["debts"],
    )
    def get(self, request):
        debts = debt_list(user=request.user)
        return Response(
            DebtListOutputSerializer({"debts": debts, "totals": debt_totals(debts)}).data
        )


@conditional_get
class DebtNextPaymentApi(APIView):
    @extend_schema(
        operation_id="debts_next_payment",
        responses={200: NextPaymentEnvelopeSerializer},
        examples=[
            OpenApiExample(
                "Due on the 3rd",
                value={"next_payment": NEXT_PAYMENT_EXAMPLE},
                response_only=True,
                status_codes=["200"],
            )
        ],
        summary="The next payment: nearest due date, all due that day, the next 7 days, items",
        description="The one next payment analytics computes from every obligation (loan "
        "instalment parts, instalments of loans the bank does not serve, recurring bills), read "
        "from the latest snapshot: the same answer as the dashboard and /api/analytics. "
        "next_payment is null when nothing is due. " + DEBT_SOURCE_NOTE,
        tags=["debts"],
    )
    def get(self, request):
        return Response(next_payment_get(user=request.user))
