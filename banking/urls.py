from django.urls import path

from banking.apis import accounts as accounts_apis
from banking.apis import categories as categories_apis
from banking.apis import products as products_apis
from banking.apis import transactions as transactions_apis

urlpatterns: list = [
    # Money data (issue 6): accounts, transactions, products (debts: analytics.urls; banks:
    # consents.urls).
    path("accounts", accounts_apis.AccountListApi.as_view(), name="account-list"),
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
