"""FinTrack users: identified by email and/or phone, linked to one bank-side client id."""

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from fintrack.core.localtime import DEFAULT_TIME_ZONE, is_valid_zone


def validate_time_zone(value: str) -> None:
    """An IANA time zone name zoneinfo knows, e.g. Europe/Moscow or Asia/Novosibirsk."""
    if not is_valid_zone(value):
        raise ValidationError(
            "Unknown time zone %(value)s: give an IANA name such as Europe/Moscow.",
            code="invalid_time_zone",
            params={"value": value},
        )


class UserManager(BaseUserManager):
    """Creates users through the same normalisation the registration service uses."""

    use_in_migrations = True

    def create_user(self, email=None, password=None, *, phone=None, **extra):
        from users.normalize import normalize_email, normalize_phone

        email = normalize_email(email) if email else None
        phone = normalize_phone(phone) if phone else None
        if not email and not phone:
            raise ValueError("A user needs an email or a phone number")
        user = self.model(email=email, phone=phone, **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email=None, password=None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person using FinTrack; who they are at each bank is on their bank connection."""

    email = models.EmailField(unique=True, null=True, blank=True)
    phone = models.CharField(max_length=20, unique=True, null=True, blank=True)
    time_zone = models.CharField(
        max_length=64,
        default=DEFAULT_TIME_ZONE,
        validators=[validate_time_zone],
        help_text="IANA time zone; days and months in every summary are local to it.",
    )
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        db_table = "users"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(email__isnull=False) | Q(phone__isnull=False),
                name="users_email_or_phone_required",
            ),
        ]

    def __str__(self) -> str:
        return self.email or self.phone or f"user {self.pk}"


class OnboardingFlow(models.Model):
    """A user's way from registration to the main screen: chosen banks and the current step."""

    class Step(models.TextChoices):
        CHOOSE_BANKS = "choose_banks", "Choose banks"
        CONSENTS = "consents", "Grant consents"
        SYNCING = "syncing", "First sync"
        DONE = "done", "Done"

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="onboarding")
    selected_banks = models.JSONField(default=list)
    step = models.CharField(max_length=16, choices=Step.choices, default=Step.CHOOSE_BANKS)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "onboarding_flows"

    def __str__(self) -> str:
        return f"onboarding {self.user_id} ({self.step})"


class ConnectRequest(models.Model):
    """A bank action asked for in a web request and carried out by a worker: a connect, an early
    renewal of the consents, a fresh request in place of a stale one, or a demo approval (`kind`).

    The web request makes the checks that need no bank (a connect also stores the client id on
    the connection), stores this row and answers 202; the task `onboarding.connect_request_run`
    makes the bank calls, so none waits in the request. At most one is active (queued or running)
    per user and bank (a constraint: the same action asked for again while one is under way
    answers that one, and the bank is not asked twice; another action waits for it); a connect
    keeps the client the connection had before, put back when the bank refuses the new one.
    """

    class Kind(models.TextChoices):
        CONNECT = "connect", "Connect"
        RENEW = "renew", "Renew consents"
        REQUEST_AGAIN = "request_again", "Request consents again"
        APPROVE_DEMO = "approve_demo", "Demo approval"

    class Status(models.TextChoices):
        # Waiting for a worker, or for its retry after a bank outage (next_retry_at).
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        # The consents were asked for: the first sync started, or the user's approval awaited.
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="connect_requests")
    bank_code = models.CharField(max_length=16)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CONNECT)
    consent = models.ForeignKey(
        "consents.Consent",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The consent a demo approval approves.",
    )
    trigger = models.CharField(max_length=16, default="user")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    client_id = models.CharField(max_length=64, blank=True, default="")
    previous_client_id = models.CharField(max_length=64, blank=True, default="")
    previous_client_id_is_demo = models.BooleanField(default=False)
    outcome = models.CharField(
        max_length=32,
        blank=True,
        default="",
        help_text="Once succeeded: sync_started, awaiting_approval or authorized.",
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    task_id = models.CharField(max_length=64, blank=True, default="")
    error = models.TextField(blank=True, default="")
    error_code = models.CharField(max_length=64, blank=True, default="")
    next_retry_at = models.DateTimeField(null=True, blank=True)
    sync_run = models.ForeignKey(
        "sync.SyncRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "connect_requests"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "bank_code"],
                condition=Q(status__in=["queued", "running"]),
                name="one_active_connect_per_user_bank",
            ),
        ]
        indexes = [
            models.Index(
                fields=["user", "bank_code", "-created_at"], name="connect_user_bank_recent"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} {self.user_id}/{self.bank_code} {self.status}"


class RevokedAccessToken(models.Model):
    """An access token ended by logout before it expires: its jti, kept until it would expire.

    The JWT authentication class (users.backends.DenyListJWTAuthentication) refuses any token
    listed here, in the same query that loads the user. Rows past `expires_at` mean nothing and
    are deleted at the next logout.
    """

    jti = models.CharField(max_length=255, primary_key=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "revoked_access_tokens"

    def __str__(self) -> str:
        return f"revoked access token {self.jti}"
