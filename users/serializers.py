"""Input and output shapes of the auth API."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from fintrack.core.localtime import DEFAULT_TIME_ZONE, is_valid_zone
from users.models import User
from users.normalize import normalize_email, normalize_phone

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


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class AccessTokenSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField(required=False)


class MeSerializer(serializers.ModelSerializer):
    user_id = serializers.IntegerField(source="id")

    class Meta:
        model = User
        fields = [
            "user_id",
            "email",
            "phone",
            "external_client_id",
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
