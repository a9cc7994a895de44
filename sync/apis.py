"""Sync APIs: start a sync, refresh balances, follow sync runs (connecting a bank:
users.onboarding).

Status codes:
- POST /api/banks/{bank_code}/sync → 202 with the new run; 409 `sync_already_running` with the
  running run in `extra.sync_run`; 409 `consent_required` before consent; 404 `unknown_bank`.
- POST /api/accounts/refresh-balances → 202 with a balances-only run per ready or failed
  connection; 409 `conflict` when there is none.
"""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from banking.serializers.common import ErrorOutputSerializer
from fintrack.core.longpoll import (
    LONG_POLL_PARAMETERS,
    NOT_MODIFIED_RESPONSE,
    long_poll_response,
)
from fintrack.core.throttling import ScopedRateThrottle
from sync import selectors, services
from sync.exceptions import SyncAlreadyRunning
from sync.serializers import (
    BalanceRefreshOutputSerializer,
    SyncRunDetailSerializer,
    SyncRunListQuerySerializer,
    SyncRunSerializer,
    SyncStartOutputSerializer,
)

BANK_CODE_PARAMETER = OpenApiParameter(
    "bank_code", str, OpenApiParameter.PATH, description="vbank, abank or sbank"
)
ERROR_RESPONSE = OpenApiResponse(description='Standard error: {"code", "message", "extra"}')


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
            bank_code=query.validated_data.get("bank_code"),
            limit=query.validated_data["limit"],
        )
        return Response(SyncRunSerializer(runs, many=True).data)


class SyncRunDetailApi(APIView):
    @extend_schema(
        parameters=LONG_POLL_PARAMETERS,
        responses={
            200: SyncRunDetailSerializer,
            304: NOT_MODIFIED_RESPONSE,
            400: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
        },
        summary="One sync run with its progress and counts (long-poll with ?since=version)",
        description=(
            "Progress, pages and counts move while the run reads (written at most once a "
            "second). With `since` (the `version` you have) the answer waits up to `wait` "
            "seconds for a change instead of being polled every second."
        ),
        tags=["sync"],
    )
    def get(self, request, sync_run_id: int):
        def read() -> dict:  # the first read answers 404 for another user's run
            run = selectors.sync_run_get(user=request.user, sync_run_id=sync_run_id)
            return SyncRunSerializer(run).data

        return long_poll_response(request, read)


class AccountBalancesRefreshApi(APIView):
    @extend_schema(
        operation_id="accounts_refresh_balances",
        request=None,
        responses={
            202: BalanceRefreshOutputSerializer,
            409: OpenApiResponse(ErrorOutputSerializer, description="No connected bank."),
        },
        summary="Refresh balances now (a balances-only sync of each connected bank)",
        tags=["accounts"],
    )
    def post(self, request):
        started = services.balances_refresh_request(user=request.user)
        runs = [
            {
                "id": run.id,
                "connection_id": run.connection_id,
                "bank_code": run.connection.bank_code,
                "kind": run.kind,
                "status": run.status,
                "created": created,
            }
            for run, created in started
        ]
        return Response(
            BalanceRefreshOutputSerializer({"runs": runs}).data, status=status.HTTP_202_ACCEPTED
        )
