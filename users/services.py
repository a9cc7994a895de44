"""Writes on users: registration with client-id assignment, login, logout."""

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import update_last_login
from django.contrib.auth.password_validation import validate_password
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.utils import datetime_from_epoch

from fintrack.core.exceptions import ValidationFailed
from users.exceptions import ClientIdPoolExhausted, IdentifierTaken, InvalidCredentials
from users.models import RevokedAccessToken, User
from users.tokens import HashedRefreshToken


def client_id_pool() -> list[str]:
    """The team's bank client ids, in assignment order: team260-1 … team260-N."""
    return [f"{settings.BANK_TEAM_ID}-{n}" for n in range(1, settings.BANK_CLIENT_POOL_SIZE + 1)]


def _first_free_client_id() -> str:
    taken = set(
        User.objects.filter(external_client_id__isnull=False).values_list(
            "external_client_id", flat=True
        )
    )
    for client_id in client_id_pool():
        if client_id not in taken:
            return client_id
    raise ClientIdPoolExhausted()


def user_create(
    *, password: str, email: str | None = None, phone: str | None = None, **extra
) -> User:
    """Register a user: validate the password, assign the first free bank client id."""
    if User.objects.filter(email=email).exists() if email else False:
        raise IdentifierTaken("A user with this email already exists.", extra={"field": "email"})
    if User.objects.filter(phone=phone).exists() if phone else False:
        raise IdentifierTaken("A user with this phone already exists.", extra={"field": "phone"})
    candidate = User(email=email, phone=phone)
    try:
        validate_password(password, user=candidate)
    except Exception as exc:  # django ValidationError with a list of messages
        messages = list(getattr(exc, "messages", [str(exc)]))
        raise ValidationFailed(
            f"password: {messages[0]}", extra={"fields": {"password": messages}}
        ) from exc

    # Two registrations may pick the same free id; the unique constraint decides, we retry.
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return User.objects.create_user(
                    email=email,
                    phone=phone,
                    password=password,
                    external_client_id=_first_free_client_id(),
                    **extra,
                )
        except IntegrityError as exc:
            if email and User.objects.filter(email=email).exists():
                raise IdentifierTaken("A user with this email already exists.") from exc
            if phone and User.objects.filter(phone=phone).exists():
                raise IdentifierTaken("A user with this phone already exists.") from exc
    raise ClientIdPoolExhausted()


def token_pair_for(user: User) -> dict[str, str]:
    """A new access + refresh pair; the refresh token is recorded by its digest only."""
    refresh = HashedRefreshToken.for_user(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def user_login(*, identifier: str, password: str, request=None) -> tuple[User, dict[str, str]]:
    """Check credentials (email or phone), update last_login, return the user and a token pair."""
    user = authenticate(request, username=identifier, password=password)
    if user is None:
        raise InvalidCredentials()
    update_last_login(type(user), user)  # the sender Django's login() sends the signal with
    return user, token_pair_for(user)


def user_logout(*, refresh_token: str, access_token=None) -> None:
    """Blacklist the refresh token so it can never mint access tokens again, and put the access
    token the request came with (a validated simplejwt token) on the deny list until it expires."""
    try:
        # The ignore: simplejwt annotates the encoded token as `Token | None`; it takes the string.
        HashedRefreshToken(refresh_token).blacklist()  # type: ignore[arg-type]
    except TokenError as exc:
        raise ValidationFailed(
            "refresh: Token is invalid or expired.",
            extra={"fields": {"refresh": ["Token is invalid or expired."]}},
        ) from exc
    if access_token is not None:
        access_token_revoke(access_token)


def access_token_revoke(access_token) -> None:
    """Deny a validated access token from now until it expires; forget expired denials."""
    now = timezone.now()
    RevokedAccessToken.objects.filter(expires_at__lte=now).delete()
    jti = access_token.get(jwt_settings.JTI_CLAIM)
    if jti:
        RevokedAccessToken.objects.get_or_create(
            jti=jti, defaults={"expires_at": datetime_from_epoch(access_token["exp"])}
        )


def user_profile_update(*, user: User, time_zone: str | None = None) -> User:
    """Change the user's profile; a new time zone re-buckets their days and months.

    After the change commits, the daily aggregates are rebuilt in the new zone (one
    INSERT … SELECT) and an analytics recomputation is queued (debounced).
    """
    if time_zone is None or time_zone == user.time_zone:
        return user
    user.time_zone = time_zone
    user.full_clean(validate_unique=False, validate_constraints=False)
    with transaction.atomic():
        user.save(update_fields=["time_zone"])
        transaction.on_commit(lambda: local_days_rebuild(user=user))
    return user


def local_days_rebuild(*, user: User) -> None:
    """Rebuild everything bucketed by local day for the user: aggregates now, analytics queued."""
    from analytics.services import analytics_recompute_request
    from banking.services.transactions import transaction_aggregates_recompute

    transaction_aggregates_recompute(user=user, since_date=None)
    analytics_recompute_request(user_id=user.pk)
