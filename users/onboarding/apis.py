"""Connect and onboarding APIs: connect a bank, the demo approval, onboarding start and status.

Status codes:
- POST /api/banks/{bank_code}/connect (optional body {"client_id": "team260-57"}) → 202 at once,
  no bank call in the request (issue 21): the intent stored, a worker asks the bank for the
  consents and starts the first sync; the answer has the `connect_request` and a `status_url`
  (GET /api/banks/{bank_code}/status, or /api/onboarding/status, read the database only), and
  says what is known so far: the consents, the first run, `action_required` once the bank left
  the request pending. Connecting again while a connect is under way answers that one (no second
  consent is requested); 409 `connect_in_progress` for one as another client. What the bank
  answers the worker becomes the connection's state: a client it does not know is `error` with
  reason `bank_client_unknown` (the old client put back); a refused request `consent_required`
  (`consent_rejected`); a bank that is down `retrying`, then `error`. 409 `already_connected`
  when the bank is connected with an authorised consent (use /sync); 404 `unknown_bank`; 400 for
  a malformed client id (or none without demo clients); 409 `client_id_taken` (another user's
  client) or `client_id_locked` (a consent of the current client is held).
- POST /api/consents/{consent_id}/approve-demo → 202 at once, no bank call in the request (issue
  21): answered like connect, with the `consent`; a worker signs as the demo client, and an
  approved accounts consent starts the first sync. 403 when demo signing is off or the client is
  not a demo client FinTrack proposed (approve in the bank's app); 409 `consent_not_pending`
  when it does not wait for approval; 404 for no such consent of the user.
- POST /api/banks/{bank_code}/consents/renew → 202 at once, answered like connect: a worker
  requests new consents while the old ones stay in use (switched once authorised;
  action_required at a manual bank); 409 `no_consent_to_renew` without an authorised consent;
  404 `unknown_bank`.
- POST /api/banks/{bank_code}/consents/request-again → 202 at once, answered like connect: a
  worker withdraws the pending requests and makes fresh ones (a lost consent asked for anew); 409
  `nothing_to_request_again` when nothing waits and access is authorised (renew) or the bank was
  never connected (connect); 404 `unknown_bank`.
  For these three the answer's `connect_request` (its `kind`) says how the worker's request went
  (queued, running, succeeded with its `outcome`, failed with `error_code`: bank_unavailable
  once its retries are spent, consent_not_pending when the bank no longer has the request…);
  the same action asked for again while it is under way answers that one (the bank is asked
  once), another action of the bank under way is a 409 `request_in_progress`.
- POST /api/onboarding/start → 202 with the status (each bank connected by a worker, as above)
  and its `status_url`; GET /api/onboarding/status → 200 (a read), long-polled with
  `?since=<version>&wait=<seconds>` (fintrack/core/longpoll.py: 304 when nothing changed).
"""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from consents.selectors import consent_get
from fintrack.core.longpoll import (
    LONG_POLL_PARAMETERS,
    NOT_MODIFIED_RESPONSE,
    body_version,
    long_poll_response,
)
from fintrack.core.throttling import ScopedRateThrottle
from users.onboarding import connect_requests, services
from users.onboarding.serializers import (
    BankConnectInputSerializer,
    BankConnectOutputSerializer,
    ConsentApproveDemoOutputSerializer,
    OnboardingStartInputSerializer,
    OnboardingStartOutputSerializer,
    OnboardingStatusSerializer,
    bank_connect_payload,
    consent_approve_demo_payload,
)

ONBOARDING_STATUS_URL = "/api/onboarding/status"

BANK_CODE_PARAMETER = OpenApiParameter(
    "bank_code", str, OpenApiParameter.PATH, description="vbank, abank or sbank"
)
ERROR_RESPONSE = OpenApiResponse(description='Standard error: {"code", "message", "extra"}')
IN_PROGRESS = (
    "request_in_progress: another request of this bank (connect, renew, request again, demo "
    "approval) is being carried out; try again once it has finished."
)


class BankConnectApi(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "sync"

    @extend_schema(
        request=BankConnectInputSerializer,
        parameters=[BANK_CODE_PARAMETER],
        responses={
            202: BankConnectOutputSerializer,
            400: OpenApiResponse(
                description="Malformed client_id, or none given while demo clients are off."
            ),
            404: OpenApiResponse(description="Unknown bank code (unknown_bank)."),
            409: OpenApiResponse(
                description=(
                    "already_connected; client_id_taken (another FinTrack user's client at this "
                    "bank); client_id_locked (revoke the current client's consent first); "
                    "connect_in_progress (a connect as another client is under way)."
                )
            ),
        },
        examples=[
            OpenApiExample(
                "Demo client (one click)",
                value={},
                request_only=True,
                description="No client id: in demo mode FinTrack proposes a free demo client.",
            ),
            OpenApiExample(
                "Your client at the bank",
                value={"client_id": "team260-57"},
                request_only=True,
            ),
        ],
        summary="Connect a bank as your client there: a worker requests the consents, then the "
        "first sync",
        description=(
            "Answers 202 at once, without calling the bank: a worker asks the bank for the "
            "consents and starts the first sync. Follow it at `status_url` (GET "
            "/api/banks/{bank_code}/status, or GET /api/onboarding/status?since=… to long-poll): "
            "the connection goes from consent_pending (connect_requested) to sync_in_progress "
            "and ready, or consent_pending with what to approve, or retrying/error with the "
            "reason (bank_client_unknown: the bank knows no such client; the old one is kept)."
        ),
        tags=["sync"],
    )
    def post(self, request, bank_code: str):
        serializer = BankConnectInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        connect = connect_requests.bank_connect_request(
            user=request.user,
            bank_code=bank_code,
            client_id=serializer.validated_data.get("client_id"),
        )
        result = connect_requests.connect_request_result(connect_request=connect)
        body = bank_connect_payload(result)
        return Response(
            body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"]}
        )


NEW_CONSENTS_RESPONSES = {
    202: BankConnectOutputSerializer,
    404: OpenApiResponse(description="Unknown bank code (unknown_bank)."),
}
ASYNC_NOTE = (
    " Answers 202 at once, without calling the bank: a worker makes the bank calls (retried "
    "with backoff while the bank is down) and `connect_request` says how that went (queued, "
    "running, succeeded with its outcome, failed with error_code). Asking again while it is "
    "under way answers the same request; follow it at `status_url`, GET "
    "/api/connect-requests/{id} (reads the database)."
)


def _accepted(body: dict) -> Response:
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"]})


class BankConsentsRenewApi(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "sync"

    @extend_schema(
        operation_id="banks_consents_renew",
        request=None,
        parameters=[BANK_CODE_PARAMETER],
        responses={
            **NEW_CONSENTS_RESPONSES,
            409: OpenApiResponse(
                description="no_consent_to_renew: connect the bank first; " + IN_PROGRESS
            ),
        },
        summary="Renew a bank's consents before they expire, without a gap in syncing",
        description=(
            "A worker requests new account and product consents while the current ones stay "
            "authorised and in use. An auto-approving bank authorises them at once and FinTrack "
            "switches (the old consents superseded, then revoked at the bank once no sync uses "
            "them); at a manual bank the answer carries action_required (once the bank said) "
            "and a worker polls the request." + ASYNC_NOTE
        ),
        tags=["consents"],
    )
    def post(self, request, bank_code: str):
        renewal = connect_requests.bank_consents_renew_request(
            user=request.user, bank_code=bank_code
        )
        result = connect_requests.connect_request_result(connect_request=renewal)
        return _accepted(bank_connect_payload(result))


class BankConsentsRequestAgainApi(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "sync"

    @extend_schema(
        operation_id="banks_consents_request_again",
        request=None,
        parameters=[BANK_CODE_PARAMETER],
        responses={
            **NEW_CONSENTS_RESPONSES,
            409: OpenApiResponse(
                description="nothing_to_request_again: nothing waits and access is authorised "
                "(renew instead), or the bank was never connected (connect); " + IN_PROGRESS
            ),
        },
        summary="Start a fresh approval request in place of a stale or lost one",
        description=(
            "For a request that expired, was rejected, or was approved in the bank's own app "
            "(which some banks never report to FinTrack): a worker withdraws the pending "
            "requests and asks for new consents, answered like connect." + ASYNC_NOTE
        ),
        tags=["consents"],
    )
    def post(self, request, bank_code: str):
        again = connect_requests.bank_consents_request_again_request(
            user=request.user, bank_code=bank_code
        )
        result = connect_requests.connect_request_result(connect_request=again)
        return _accepted(bank_connect_payload(result))


class ConsentApproveDemoApi(APIView):
    @extend_schema(
        operation_id="consents_approve_demo",
        summary="Demo only: approve a pending consent as the bank's test client (SPEC §3.4)",
        description=(
            "Stands in for approving in the bank's own app. A worker signs as the demo client; "
            "an approved accounts consent of a connected bank starts its first sync (see GET "
            "/api/onboarding/status). `consent` is the consent as stored now: pending until "
            "the worker has the bank's answer. A bank that no longer has the request waiting "
            "fails the request with error_code consent_not_pending." + ASYNC_NOTE
        ),
        request=None,
        responses={
            202: ConsentApproveDemoOutputSerializer,
            403: OpenApiResponse(
                description=(
                    "demo_signing_disabled (off on this server) or not_a_demo_client (a client "
                    "you gave yourself: approve in the bank's app)."
                )
            ),
            404: OpenApiResponse(description="No such consent of this user (consent_not_found)."),
            409: OpenApiResponse(
                description="consent_not_pending: the consent is not waiting for approval; "
                + IN_PROGRESS
            ),
        },
        tags=["consents"],
    )
    def post(self, request, consent_id: int):
        consent = consent_get(user=request.user, consent_id=consent_id)
        approval = connect_requests.consent_approve_demo_request(consent=consent)
        result = connect_requests.connect_request_result(connect_request=approval)
        return _accepted(consent_approve_demo_payload(result))


class ConnectRequestApi(APIView):
    @extend_schema(
        operation_id="connect_requests_retrieve",
        parameters=[
            OpenApiParameter("connect_request_id", int, OpenApiParameter.PATH),
        ],
        responses={
            200: BankConnectOutputSerializer,
            404: OpenApiResponse(
                description="Not one of your requests (connect_request_not_found)."
            ),
        },
        summary="Follow a connect, renewal, fresh request or demo approval",
        description=(
            "How the request a worker carries out stands, read from the database (no bank call): "
            "`connect_request` (queued, running, succeeded with its outcome, failed with "
            "error_code and error), the consents it asked for and the bank's connection. The "
            "same answer as the POST that created it, now."
        ),
        tags=["consents"],
    )
    def get(self, request, connect_request_id: int):
        connect = connect_requests.connect_request_get(
            user=request.user, connect_request_id=connect_request_id
        )
        result = connect_requests.connect_request_result(connect_request=connect)
        return Response(bank_connect_payload(result))


class OnboardingStartApi(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "sync"

    @extend_schema(
        request=OnboardingStartInputSerializer,
        responses={
            202: OnboardingStartOutputSerializer,
            400: OpenApiResponse(description="No bank, an unknown bank or a malformed client id."),
            409: OpenApiResponse(
                description="client_id_taken, client_id_locked or connect_in_progress (nothing "
                "done)."
            ),
        },
        examples=[
            OpenApiExample(
                "Every bank, demo clients",
                value={"banks": ["vbank", "abank", "sbank"]},
                request_only=True,
            ),
            OpenApiExample(
                "Your own client at VBank",
                value={"banks": [{"bank_code": "vbank", "client_id": "team260-57"}, "abank"]},
                request_only=True,
            ),
        ],
        summary="Start onboarding: a worker connects each chosen bank",
        description=(
            "Answers 202 at once with the status (no bank call here): a worker per bank asks for "
            "the consents and starts its first sync. Follow GET /api/onboarding/status (the "
            "`status_url`), long-polled with ?since=<version>."
        ),
        tags=["onboarding"],
    )
    def post(self, request):
        serializer = OnboardingStartInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.onboarding_start(
            user=request.user,
            bank_codes=serializer.bank_codes(),
            client_ids=serializer.client_ids(),
        )
        data = OnboardingStatusSerializer(services.onboarding_status(user=request.user)).data
        # The version lets the client long-poll the status right away (?since=).
        body = {**data, "version": body_version(data), "status_url": ONBOARDING_STATUS_URL}
        return Response(
            body, status=status.HTTP_202_ACCEPTED, headers={"Location": ONBOARDING_STATUS_URL}
        )


class OnboardingStatusApi(APIView):
    @extend_schema(
        parameters=LONG_POLL_PARAMETERS,
        responses={
            200: OnboardingStatusSerializer,
            304: NOT_MODIFIED_RESPONSE,
            400: OpenApiResponse(description="A bad since or wait."),
        },
        summary="Onboarding progress per bank and overall, and whether the user may proceed",
        description=(
            "Reads the database only. `progress.percent` covers all chosen banks, weighted by "
            "their transaction pages; each bank's `sync` counts up as batches are written "
            "(pages_done/pages_total, eta_seconds). With `since` (the `version` you have) it "
            "answers as soon as anything changed, or with 304 after `wait` seconds (at most 25)."
        ),
        tags=["onboarding"],
    )
    def get(self, request):
        def read() -> dict:
            return OnboardingStatusSerializer(services.onboarding_status(user=request.user)).data

        return long_poll_response(request, read)
