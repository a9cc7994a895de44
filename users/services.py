"""Writes on users: registration, login, logout, password change.

Deleting an account with all its data is users.deletion; exporting it, users.data_export.
"""

from django.contrib.auth import authenticate
from django.contrib.auth.models import update_last_login
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from audit.services import AuditAction, audit_event_record
from fintrack.core.exceptions import ValidationFailed
from users.exceptions import IdentifierTaken, InvalidCredentials, WrongPassword
from users.models import RevokedAccessToken, User
from users.tokens import HashedRefreshToken


def user_create(
    *, password: str, email: str | None = None, phone: str | None = None, **extra
) -> User:
    """Register a user: the identifier free, the password accepted by the validators.

    Nothing bank-side happens here: who the user is at a bank (the bank client id) belongs to
    the connection, given when the user connects that bank (users.onboarding.bank_connect).
    """
    if User.objects.filter(email=email).exists() if email else False:
        raise IdentifierTaken("A user with this email already exists.", extra={"field": "email"})
    if User.objects.filter(phone=phone).exists() if phone else False:
        raise IdentifierTaken("A user with this phone already exists.", extra={"field": "phone"})
    _password_check(password, user=User(email=email, phone=phone), field="password")
    try:
        with transaction.atomic():
            return User.objects.create_user(email=email, phone=phone, password=password, **extra)
    except IntegrityError as exc:
        # A concurrent registration took the identifier between the check and the insert.
        if email and User.objects.filter(email=email).exists():
            field = "email"
        elif phone and User.objects.filter(phone=phone).exists():
            field = "phone"
        else:
            raise
        raise IdentifierTaken(
            f"A user with this {field} already exists.", extra={"field": field}
        ) from exc


def _password_check(password: str, *, user: User, field: str) -> None:
    """AUTH_PASSWORD_VALIDATORS on `password` for `user`; their messages under `field`."""
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        messages = list(exc.messages)
        raise ValidationFailed(
            f"{field}: {messages[0]}", extra={"fields": {field: messages}}
        ) from exc


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


def password_confirm(*, user: User, password: str, field: str = "password") -> None:
    """Refuse (WrongPassword, nothing changed) unless `password` is the user's own."""
    if not password or not user.check_password(password):
        raise WrongPassword(extra={"fields": {field: ["The password is not correct."]}})


def refresh_tokens_end(*, user: User) -> int:
    """Blacklist every outstanding, unexpired refresh token of the user; how many were ended."""
    live = OutstandingToken.objects.filter(
        user=user, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
    )
    ended = [BlacklistedToken(token=token) for token in live.only("pk")]
    # ignore_conflicts: a token blacklisted meanwhile (a concurrent logout) stays blacklisted.
    BlacklistedToken.objects.bulk_create(ended, ignore_conflicts=True)
    return len(ended)


def user_password_change(
    *, user: User, current_password: str, new_password: str, access_token=None
) -> dict[str, str]:
    """Change the password after checking the current one; every other session ends.

    Every refresh token issued so far is blacklisted and the access token of the request
    (`access_token`, a validated simplejwt token) is denied; a fresh pair is returned so the
    caller stays logged in. Other sessions' access tokens (not recorded anywhere) still work
    until they expire (JWT_ACCESS_MINUTES) but can no longer be refreshed. A wrong current
    password or a new one the validators refuse changes nothing.
    """
    password_confirm(user=user, password=current_password, field="current_password")
    if new_password == current_password:
        raise ValidationFailed(
            "new_password: The new password must differ from the current one.",
            extra={
                "fields": {"new_password": ["The new password must differ from the current one."]}
            },
        )
    _password_check(new_password, user=user, field="new_password")
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        sessions_ended = refresh_tokens_end(user=user)
        if access_token is not None:
            access_token_revoke(access_token)
        audit_event_record(
            action=AuditAction.USER_PASSWORD_CHANGED,
            user=user,
            obj=user,
            details={"refresh_tokens_ended": sessions_ended},
        )
        return token_pair_for(user)


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
