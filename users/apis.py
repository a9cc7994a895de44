"""Auth API: register, login, refresh, logout, me; password change, account deletion, export."""

from django.http import FileResponse
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenRefreshView

from banking.serializers.common import ErrorOutputSerializer
from fintrack.core.throttling import ScopedRateThrottle
from users import services
from users.data_export import user_data_export
from users.deletion import user_delete
from users.serializers import (
    AccessTokenSerializer,
    AccountDeleteInputSerializer,
    AccountDeletionOutputSerializer,
    LoginInputSerializer,
    MeSerializer,
    MeUpdateInputSerializer,
    PasswordChangeInputSerializer,
    RefreshInputSerializer,
    RegisterInputSerializer,
    RegisterOutputSerializer,
    TokenPairSerializer,
)

ERROR = OpenApiResponse(
    ErrorOutputSerializer, description='Standard error: {"code", "message", "extra"}.'
)
NOT_AUTHENTICATED = OpenApiResponse(
    ErrorOutputSerializer, description="Missing, expired or revoked access token."
)
THROTTLED = OpenApiResponse(
    ErrorOutputSerializer, description="Too many attempts: `throttled`, retry after the wait."
)


class RegisterApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "register"

    @extend_schema(
        request=RegisterInputSerializer,
        responses={201: RegisterOutputSerializer},
        summary="Register with email and/or phone",
        tags=["auth"],
    )
    def post(self, request):
        serializer = RegisterInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_create(**serializer.validated_data)
        body = {
            "user_id": user.id,
            "user": MeSerializer(user).data,
            "tokens": services.token_pair_for(user),
        }
        return Response(body, status=status.HTTP_201_CREATED)


class LoginApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(
        request=LoginInputSerializer,
        responses={200: TokenPairSerializer},
        summary="Log in with email or phone and password",
        tags=["auth"],
    )
    def post(self, request):
        serializer = LoginInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        _user, tokens = services.user_login(
            identifier=serializer.validated_data["login"],
            password=serializer.validated_data["password"],
            request=request,
        )
        return Response(tokens)


class RefreshApi(TokenRefreshView):
    """Exchange a refresh token for a new access token (the refresh token rotates)."""

    authentication_classes: list = []

    @extend_schema(
        request=RefreshInputSerializer, responses={200: AccessTokenSerializer}, tags=["auth"]
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class LogoutApi(APIView):
    @extend_schema(request=RefreshInputSerializer, responses={204: None}, tags=["auth"])
    def post(self, request):
        serializer = RefreshInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.user_logout(
            refresh_token=serializer.validated_data["refresh"], access_token=request.auth
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeApi(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "password"

    @extend_schema(
        request=PasswordChangeInputSerializer,
        responses={
            200: TokenPairSerializer,
            400: OpenApiResponse(
                ErrorOutputSerializer,
                description=(
                    "`wrong_password` (the current password is not yours; "
                    "extra.fields.current_password) or `validation_error` (the new one is "
                    "refused by the password rules; extra.fields.new_password). Nothing changed."
                ),
            ),
            401: NOT_AUTHENTICATED,
            429: THROTTLED,
        },
        summary="Change your password; every other session ends",
        description=(
            "Every refresh token issued so far is revoked and the access token of this request "
            "stops working; the answer is a fresh token pair, so this client stays logged in. "
            "Access tokens of other sessions can no longer be refreshed and expire within "
            "JWT_ACCESS_MINUTES."
        ),
        tags=["auth"],
    )
    def post(self, request):
        serializer = PasswordChangeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tokens = services.user_password_change(
            user=request.user,
            current_password=serializer.validated_data["current_password"],
            new_password=serializer.validated_data["new_password"],
            access_token=request.auth,
        )
        return Response(tokens)


class DeleteWithBodySchema(AutoSchema):
    """drf-spectacular documents no body for a DELETE; DELETE /api/auth/me takes one (the
    password confirming it), which OpenAPI 3.1 and Swagger UI allow."""

    def _get_request_body(self, direction="request"):
        if self.method != "DELETE":
            return super()._get_request_body(direction)
        self.method = "POST"  # the parent only looks for bodies of PUT, PATCH and POST
        try:
            return super()._get_request_body(direction)
        finally:
            self.method = "DELETE"


class MeApi(APIView):
    schema = DeleteWithBodySchema()
    # Throttled only when it checks the password (DELETE); reading and PATCH stay free.
    throttle_scope = "password"

    def get_throttles(self):
        return [ScopedRateThrottle()] if self.request.method == "DELETE" else []

    @extend_schema(responses={200: MeSerializer}, summary="Your profile", tags=["auth"])
    def get(self, request):
        return Response(MeSerializer(request.user).data)

    @extend_schema(
        request=MeUpdateInputSerializer,
        responses={200: MeSerializer, 400: OpenApiResponse(description="Error")},
        summary="Change your profile (time zone)",
        description=(
            "time_zone is an IANA name (default Europe/Moscow). Changing it rebuilds your daily "
            "aggregates in the new zone and queues a recomputation of your analytics: every day "
            "and month FinTrack shows is a local one. An unknown zone is a 400."
        ),
        tags=["auth"],
    )
    def patch(self, request):
        serializer = MeUpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_profile_update(user=request.user, **serializer.validated_data)
        return Response(MeSerializer(user).data)

    @extend_schema(
        request=AccountDeleteInputSerializer,
        responses={
            200: AccountDeletionOutputSerializer,
            400: OpenApiResponse(
                ErrorOutputSerializer,
                description=(
                    "`wrong_password` (extra.fields.password) or `validation_error` (no "
                    "password given). Nothing changed."
                ),
            ),
            401: NOT_AUTHENTICATED,
            429: THROTTLED,
        },
        summary="Delete your account and all your data",
        description=(
            "Confirm with your password (JSON body). FinTrack first revokes every consent it "
            "holds at the banks, then deletes every row of your data (connections, consents, "
            "accounts, balances, transactions, agreements, rules, sync runs, analytics, tokens, "
            "raw bank logs) in one transaction. A bank that does not answer does not stop the "
            "deletion: its consent is listed with `revoked: false` and, when the bank was "
            "unavailable, `retrying: true` (FinTrack keeps trying, with backoff). The audit "
            "trail is kept without personal data, under a random pseudonym. Your tokens stop "
            "working at once."
        ),
        tags=["auth"],
    )
    def delete(self, request):
        serializer = AccountDeleteInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        deletion = user_delete(user=request.user, password=serializer.validated_data["password"])
        body = {
            "deleted": True,
            "consents": deletion.revocations,
            "rows_deleted": sum(deletion.rows_deleted.values()),
        }
        return Response(AccountDeletionOutputSerializer(body).data)


class MeExportApi(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "data_export"

    @extend_schema(
        operation_id="auth_me_export",
        responses={
            (200, "application/zip"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description=(
                    "A zip: profile.json, connections.json, consents.json (no bank ids or "
                    "tokens), accounts.json, balances.json, transactions.json, agreements.json, "
                    "category_rules.json, sync_runs.json, analytics_snapshot.json (the latest), "
                    "transactions.csv (the columns of /api/transactions/export.csv) and "
                    "manifest.json (rows per file). Money is a decimal string beside its "
                    "currency; datetimes are ISO 8601 in UTC."
                ),
            ),
            401: NOT_AUTHENTICATED,
            429: THROTTLED,
        },
        summary="Download all your data (zip of JSON files and a CSV)",
        tags=["auth"],
    )
    def get(self, request):
        export = user_data_export(user=request.user)
        response = FileResponse(
            export.file,
            as_attachment=True,
            filename=export.filename,
            content_type="application/zip",
        )
        response["Content-Length"] = str(export.size)
        response["Cache-Control"] = "private, no-store"
        return response

    def perform_content_negotiation(self, request, force=False):
        # The file is not a DRF rendering: a client asking for application/zip only must still
        # get its errors (as JSON, the one error shape) instead of a 406.
        return super().perform_content_negotiation(request, force=True)
