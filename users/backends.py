"""Authentication: by email or phone with a password (Django), by JWT bearer token (DRF)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.db.models import Exists
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from users.models import RevokedAccessToken
from users.normalize import normalize_email, normalize_phone


class EmailOrPhoneBackend(ModelBackend):
    """`username` may be an email or a phone number; both are normalised before lookup."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        identifier = username or kwargs.get("email") or kwargs.get("phone")
        if not identifier or password is None:
            return None
        User = get_user_model()
        try:
            if "@" in identifier:
                user = User.objects.get(email=normalize_email(identifier))
            else:
                user = User.objects.get(phone=normalize_phone(identifier))
        except (User.DoesNotExist, ValidationError):
            # Run the hasher anyway so timing does not reveal which identifiers exist.
            User().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None


class DenyListJWTAuthentication(JWTAuthentication):
    """simplejwt's bearer-token authentication, refusing access tokens ended by logout.

    The deny list (users.models.RevokedAccessToken) is checked in the same query that loads the
    user, so an authenticated request costs no more queries than before. A token of a user who
    no longer exists, or is inactive, is a 401 as in simplejwt.
    """

    def get_user(self, validated_token):
        try:
            user_id = validated_token[jwt_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc
        jti = validated_token.get(jwt_settings.JTI_CLAIM)
        revoked = RevokedAccessToken.objects.filter(jti=jti)
        try:
            user = (
                self.user_model.objects.filter(**{jwt_settings.USER_ID_FIELD: user_id})
                .annotate(access_revoked=Exists(revoked))
                .first()
            )
        except (ValueError, TypeError) as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc
        if user is None:
            raise AuthenticationFailed("User not found", code="user_not_found")
        if user.access_revoked:
            raise InvalidToken("Token has been revoked (logged out)")
        if jwt_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        return user


class DenyListJWTScheme(SimpleJWTScheme):
    """The OpenAPI security scheme of DenyListJWTAuthentication: simplejwt's own (jwtAuth)."""

    target_class = "users.backends.DenyListJWTAuthentication"
