from django.urls import path

from analytics.apis import AnalyticsApi, AnalyticsRecomputeApi, DashboardApi

urlpatterns = [
    path("dashboard", DashboardApi.as_view(), name="dashboard"),
    path("analytics", AnalyticsApi.as_view(), name="analytics"),
    path("analytics/recompute", AnalyticsRecomputeApi.as_view(), name="analytics-recompute"),
]
