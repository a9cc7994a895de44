"""Sync APIs: connect a bank, start a sync, follow sync runs.

Status codes:
- POST /api/banks/{bank_code}/connect → 202 with the consents and the first run when the bank
  authorised access at once; 202 with `action_required` while a consent awaits the user's approval
  (connecting again re-polls it, idempotently); 409 `already_connected` when the bank is connected
  with an authorised consent (use /sync); 404 `unknown_bank`.
- POST /api/banks/{bank_code}/sync → 202 with the new run; 409 `sync_already_running` with the
  running run in `extra.sync_run`; 409 `consent_required` before consent; 404 `unknown_bank`.
"""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from sync import selectors, services
from sync.exceptions import SyncAlreadyRunning
from sync.serializers import (
    BankConnectOutputSerializer,
    SyncRunListQuerySerializer,
    SyncRunSerializer,
    SyncStartOutputSerializer,
    bank_connect_payload,
)

BANK_CODE_PARAMETER = OpenApiParameter(
    "bank_code", str, OpenApiParameter.PATH, description="vbank, abank or sbank"
)
ERROR_RESPONSE = OpenApiResponse(description='Standard error: {"code", "message", "extra"}')


class BankConnectApi(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "sync"

    @extend_schema(
        request=None,
        parameters=[BANK_CODE_PARAMETER],
        responses={
            202: BankConnectOutputSerializer,
            404: ERROR_RESPONSE,
            409: ERROR_RESPONSE,
            502: ERROR_RESPONSE,
            503: ERROR_RESPONSE,
        },
        summary="Connect a bank: request consents; start the first sync once authorised",
        tags=["sync"],
    )
    def post(self, request, bank_code: str):
        result = services.bank_connect(user=request.user, bank_code=bank_code)
        return Response(bank_connect_payload(result), status=status.HTTP_202_ACCEPTED)


class BankSyncApi(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "sync"

    @extend_schema(
        request=None,
        parameters=[BANK_CODE_PARAMETER],
        responses={202: SyncStartOutputSerializer, 404: ERROR_RESPONSE, 409: ERROR_RESPONSE},
        summary="Start a sync of one bank (409 sync_already_running answers with the running one)",
        tags=["sync"],
    )
    def post(self, request, bank_code: str):
        run, created = services.bank_sync_request(user=request.user, bank_code=bank_code)
        if not created:
            raise SyncAlreadyRunning(
                "A sync of this bank is already running; follow it instead of starting another.",
                extra={"sync_run_id": run.pk, "sync_run": SyncRunSerializer(run).data},
            )
        body = {"sync_run_id": run.pk, "sync_run": SyncRunSerializer(run).data}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class SyncRunListApi(APIView):
    @extend_schema(
        parameters=[SyncRunListQuerySerializer],
        responses={200: SyncRunSerializer(many=True), 400: ERROR_RESPONSE},
        summary="The user's recent sync runs, newest first",
        tags=["sync"],
    )
    def get(self, request):
        query = SyncRunListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        runs = selectors.sync_run_list(
            user=request.user,
            bank_code=query.validated_data.get("bank"),
            limit=query.validated_data["limit"],
        )
        return Response(SyncRunSerializer(runs, many=True).data)


class SyncRunDetailApi(APIView):
    @extend_schema(
        responses={200: SyncRunSerializer, 404: ERROR_RESPONSE},
        summary="One sync run with its progress and counts",
        tags=["sync"],
    )
    def get(self, request, sync_run_id: int):
        run = selectors.sync_run_get(user=request.user, sync_run_id=sync_run_id)
        return Response(SyncRunSerializer(run).data)
