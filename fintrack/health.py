"""Health check: the database and the broker, 200 or 503 naming what failed.

In the project package (the composition root), not fintrack.core: it asks the Celery app
(fintrack.celery) about the broker, and core imports neither the project package nor any app.
"""

import logging

from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from fintrack.celery import app as celery_app

logger = logging.getLogger(__name__)


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        logger.warning("health: database check failed: %s", exc)
        return type(exc).__name__
    return None


def _check_broker() -> str | None:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
    except Exception as exc:
        logger.warning("health: broker check failed: %s", exc)
        return type(exc).__name__
    return None


class HealthApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(
        responses={
            200: inline_serializer(
                "Health",
                {"status": serializers.CharField(), "checks": serializers.DictField()},
            ),
            503: None,
        },
        tags=["health"],
    )
    def get(self, request):
        checks = {"database": _check_database(), "broker": _check_broker()}
        failed = [name for name, error in checks.items() if error]
        body = {
            "status": "ok" if not failed else "unavailable",
            "checks": {
                name: ("ok" if not err else f"failed: {err}") for name, err in checks.items()
            },
        }
        if failed:
            body.update(code="service_unavailable", message=f"Unavailable: {', '.join(failed)}")
        return Response(body, status=503 if failed else 200)
