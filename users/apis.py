"""Auth API: register, login, refresh, logout, me."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenRefreshView

from fintrack.core.throttling import ScopedRateThrottle
from users import services
from users.serializers import (
    AccessTokenSerializer,
    LoginInputSerializer,
    MeSerializer,
    MeUpdateInputSerializer,
    RefreshInputSerializer,
    RegisterInputSerializer,
    RegisterOutputSerializer,
    TokenPairSerializer,
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


class MeApi(APIView):
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
