from django.urls import path

from sync import apis

urlpatterns = [
    path("banks/<str:bank_code>/sync", apis.BankSyncApi.as_view(), name="bank-sync"),
    path(
        "accounts/refresh-balances",
        apis.AccountBalancesRefreshApi.as_view(),
        name="account-refresh-balances",
    ),
    path("sync-runs", apis.SyncRunListApi.as_view(), name="sync-run-list"),
    path("sync-runs/<int:sync_run_id>", apis.SyncRunDetailApi.as_view(), name="sync-run-detail"),
]
