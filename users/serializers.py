"""Input and output shapes of the auth API."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from fintrack.core.localtime import DEFAULT_TIME_ZONE, is_valid_zone
from users.models import User
from users.normalize import INVISIBLE_CODE, normalize_email, normalize_phone
from users.tokens import HashedRefreshToken

TIME_ZONE_HELP = (
    f"IANA time zone, e.g. Europe/Moscow (default {DEFAULT_TIME_ZONE}) or Asia/Novosibirsk. "
    "Days and months in every summary, aggregate and indicator are local to it."
)


def _time_zone_checked(value: str) -> str:
    value = (value or "").strip()
    if not is_valid_zone(value):
        raise serializers.ValidationError(
            f"Unknown time zone {value!r}: give an IANA name such as Europe/Moscow."
        )
    return value


class RegisterInputSerializer(serializers.Serializer):
    email = serializers.CharField(required=False, allow_blank=True, max_length=254)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=32)
    password = serializers.CharField(write_only=True, max_length=128)
    time_zone = serializers.CharField(required=False, max_length=64, help_text=TIME_ZONE_HELP)

    def validate_time_zone(self, value):
        return _time_zone_checked(value)

    def validate_email(self, value):
        if not value:
            return None
        try:
            return normalize_email(value)
        except DjangoValidationError as exc:
            if exc.code == INVISIBLE_CODE:
                raise serializers.ValidationError(exc.messages[0], code=INVISIBLE_CODE) from exc
            raise serializers.ValidationError("Enter a valid email address.") from exc

    def validate_phone(self, value):
        if not value:
            return None
        try:
            return normalize_phone(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages[0]) from exc

    def validate(self, attrs):
        if not attrs.get("email") and not attrs.get("phone"):
            raise serializers.ValidationError(
                {
                    "email": ["Give an email or a phone number."],
                    "phone": ["Give an email or a phone number."],
                }
            )
        return attrs


class LoginInputSerializer(serializers.Serializer):
    login = serializers.CharField(
        max_length=254, help_text="Email or phone number the user registered with."
    )
    password = serializers.CharField(write_only=True, max_length=128)


class RefreshInputSerializer(serializers.Serializer):
    refresh = serializers.CharField()


class HashedTokenRefreshSerializer(TokenRefreshSerializer):
    """POST /api/auth/refresh: simplejwt's rotation with digest-recorded tokens
    (users.tokens.HashedRefreshToken), and a 401 for a user who no longer exists or is inactive."""

    token_class = HashedRefreshToken

    def validate(self, attrs):
        refresh = self.token_class(attrs["refresh"])
        user_id = refresh.payload.get(jwt_settings.USER_ID_CLAIM)
        try:
            user = User.objects.filter(**{jwt_settings.USER_ID_FIELD: user_id}).first()
        except (ValueError, TypeError):
            user = None
        if not jwt_settings.USER_AUTHENTICATION_RULE(user):
            raise AuthenticationFailed(
                self.error_messages["no_active_account"], "no_active_account"
            )
        data = {"access": str(refresh.access_token)}
        if jwt_settings.ROTATE_REFRESH_TOKENS:
            if jwt_settings.BLACKLIST_AFTER_ROTATION:
                refresh.blacklist()
            refresh.set_jti()
            refresh.set_exp()
            refresh.set_iat()
            refresh.outstand()
            data["refresh"] = str(refresh)
        return data


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class AccessTokenSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField(required=False)


class MeSerializer(serializers.ModelSerializer):
    """The profile. Who the user is at each bank is the connection's: GET /api/banks."""

    user_id = serializers.IntegerField(source="id")

    class Meta:
        model = User
        fields = [
            "user_id",
            "email",
            "phone",
            "time_zone",
            "created_at",
            "last_login",
        ]
        extra_kwargs = {"time_zone": {"help_text": TIME_ZONE_HELP}}


class MeUpdateInputSerializer(serializers.Serializer):
    """PATCH /api/auth/me: the profile fields a user may change."""

    time_zone = serializers.CharField(required=False, max_length=64, help_text=TIME_ZONE_HELP)

    def validate_time_zone(self, value):
        return _time_zone_checked(value)


class RegisterOutputSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    user = MeSerializer()
    tokens = TokenPairSerializer()


class PasswordChangeInputSerializer(serializers.Serializer):
    """POST /api/auth/password."""

    current_password = serializers.CharField(write_only=True, max_length=128)
    new_password = serializers.CharField(
        write_only=True,
        max_length=128,
        help_text="Checked by the password validators (length, similarity, common passwords).",
    )


class AccountDeleteInputSerializer(serializers.Serializer):
    """DELETE /api/auth/me: the password confirms it."""

    password = serializers.CharField(write_only=True, max_length=128)


class RevocationOutcomeSerializer(serializers.Serializer):
    bank_code = serializers.CharField()
    kind = serializers.CharField()
    revoked = serializers.BooleanField()
    error_code = serializers.CharField(help_text="Why the bank did not revoke it; empty if it did.")
    retrying = serializers.BooleanField(
        help_text="The bank was unavailable: FinTrack keeps trying to revoke it (with backoff)."
    )


class AccountDeletionOutputSerializer(serializers.Serializer):
    deleted = serializers.BooleanField()
    consents = RevocationOutcomeSerializer(
        many=True, help_text="Each consent FinTrack held at a bank and whether it was revoked."
    )
    rows_deleted = serializers.IntegerField(help_text="Rows of your data deleted, in all.")
