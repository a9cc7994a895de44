"""Analytics API: the dashboard, the full breakdown, on-demand recomputation."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from analytics import services
from analytics.dashboard import analytics_breakdown_get, dashboard_get
from analytics.serializers import (
    AnalyticsBreakdownSerializer,
    DashboardSerializer,
    RecomputeAcceptedSerializer,
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
