"""Accounts API: the user's accounts with balances and totals, one account's history (refreshing
balances starts sync runs: sync.apis)."""

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from banking.selectors.accounts import (
    BALANCE_HISTORY_LIMIT,
    account_get,
    account_list,
    account_summary_list,
    balance_history,
)
from banking.serializers.accounts import AccountDetailOutputSerializer, AccountListOutputSerializer
from banking.serializers.common import MAX_ID, ErrorOutputSerializer
from fintrack.core.exceptions import NotFound

NOT_FOUND = OpenApiResponse(ErrorOutputSerializer, description="Not one of your accounts.")
ACCOUNTS_EXAMPLE = OpenApiExample(
    "Two banks",
    value={
        "accounts": [
            {
                "id": 12,
                "bank_code": "vbank",
                "bank_account_id": "acc-3846",
                "account_type": "checking",
                "subtype": "Checking",
                "masked_number": "**** 3846",
                "currency": "RUB",
                "nickname": "Checking счет",
                "opening_date": "2023-04-17",
                "is_active": True,
                "is_spendable": True,
                "is_debt": False,
                "balance": "121398.37",
                "balance_as_of": "2026-12-01T15:00:00Z",
            },
            {
                "id": 15,
                "bank_code": "abank",
                "bank_account_id": "acc-5120",
                "account_type": "loan",
                "subtype": "Loan",
                "masked_number": "**** 5120",
                "currency": "RUB",
                "nickname": "Loan счет",
                "opening_date": "2024-02-01",
                "is_active": True,
                "is_spendable": False,
                "is_debt": True,
                "balance": "850000.00",
                "balance_as_of": "2026-12-01T15:00:00Z",
            },
        ],
        "totals": [
            {
                "currency": "RUB",
                "spendable_total": "121398.37",
                "savings_total": "0.00",
                "debt_total": "850000.00",
                "accounts_count": 2,
                "updated_at": "2026-12-01T15:00:02Z",
            }
        ],
    },
    response_only=True,
    status_codes=["200"],
)


class AccountListApi(APIView):
    @extend_schema(
        operation_id="accounts_list",
        responses={200: AccountListOutputSerializer},
        examples=[ACCOUNTS_EXAMPLE],
        summary="Your accounts with the latest balance each, and totals per currency",
        description=(
            "Totals come from the per-currency summary refreshed after each sync: spendable "
            "(checking, card), savings (savings, deposit) and debt (loan, credit card), active "
            "accounts only."
        ),
        tags=["accounts"],
    )
    def get(self, request):
        data = {
            "accounts": account_list(user=request.user),
            "totals": account_summary_list(user=request.user),
        }
        return Response(AccountListOutputSerializer(data).data)


class AccountDetailApi(APIView):
    @extend_schema(
        operation_id="accounts_detail",
        responses={200: AccountDetailOutputSerializer, 404: NOT_FOUND},
        summary="One account with its balance history",
        description=f"Balance readings newest first, at most {BALANCE_HISTORY_LIMIT}.",
        tags=["accounts"],
    )
    def get(self, request, account_id: int):
        if account_id > MAX_ID:
            raise NotFound("No such account.", extra={"account_id": account_id})
        account = account_get(user=request.user, account_id=account_id)
        account.balance_history = balance_history(account=account)
        return Response(AccountDetailOutputSerializer(account).data)
