from django.urls import path

from analytics.apis import (
    AnalyticsApi,
    AnalyticsRecomputeApi,
    DashboardApi,
    DebtListApi,
    DebtNextPaymentApi,
)

urlpatterns = [
    path("dashboard", DashboardApi.as_view(), name="dashboard"),
    path("analytics", AnalyticsApi.as_view(), name="analytics"),
    path("analytics/recompute", AnalyticsRecomputeApi.as_view(), name="analytics-recompute"),
    # The user's loans and credit cards (issue 6), and the next payment across all obligations.
    path("debts", DebtListApi.as_view(), name="debt-list"),
    path("debts/next-payment", DebtNextPaymentApi.as_view(), name="debt-next-payment"),
]
