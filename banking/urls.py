from django.urls import path

from banking.apis import accounts as accounts_apis
from banking.apis import banks as banks_apis
from banking.apis import categories as categories_apis
from banking.apis import debts as debts_apis
from banking.apis import products as products_apis
from banking.apis import transactions as transactions_apis

urlpatterns: list = [
    # Banks and the user's connection to each (issue 4).
    path("banks", banks_apis.BankListApi.as_view(), name="bank-list"),
    path("banks/<str:bank_code>/status", banks_apis.BankStatusApi.as_view(), name="bank-status"),
    # Money data (issue 6): accounts, transactions, products, debts.
    path("accounts", accounts_apis.AccountListApi.as_view(), name="account-list"),
    path(
        "accounts/refresh-balances",
        accounts_apis.AccountBalancesRefreshApi.as_view(),
        name="account-refresh-balances",
    ),
    path(
        "accounts/<int:account_id>", accounts_apis.AccountDetailApi.as_view(), name="account-detail"
    ),
    path("transactions", transactions_apis.TransactionListApi.as_view(), name="transaction-list"),
    path(
        "transactions/summary",
        transactions_apis.TransactionSummaryApi.as_view(),
        name="transaction-summary",
    ),
    path(
        "transactions/export.csv",
        transactions_apis.TransactionExportApi.as_view(),
        name="transaction-export-csv",
    ),
    path(
        "transactions/<int:transaction_id>",
        transactions_apis.TransactionDetailApi.as_view(),
        name="transaction-detail",
    ),
    path("products", products_apis.ProductListApi.as_view(), name="product-list"),
    path("debts", debts_apis.DebtListApi.as_view(), name="debt-list"),
    path("debts/next-payment", debts_apis.DebtNextPaymentApi.as_view(), name="debt-next-payment"),
    # The user's own category rules (issue 17); PATCH /transactions/<id> is on transaction-detail.
    path(
        "categories/rules", categories_apis.CategoryRuleListApi.as_view(), name="category-rule-list"
    ),
    path(
        "categories/rules/<int:rule_id>",
        categories_apis.CategoryRuleDetailApi.as_view(),
        name="category-rule-detail",
    ),
]
