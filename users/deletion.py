"""Deleting an account (DELETE /api/auth/me): its consents withdrawn at the banks, then every row
of the user in every app, in one transaction; the audit trail stays, without personal data.

1. The password is confirmed first: a wrong one changes nothing.
2. Every live consent (accounts and products, at each bank) is revoked through
   consents.services.consent_revoke, outside any database transaction (bank calls). A bank that
   is down does not stop the deletion: the failure is logged and audited (bank, kind, the bank's
   consent id, the error) and, when retrying may help, a task retries it with backoff
   (users.tasks.consent_revocation_retry). What the retry needs travels in the task message
   only, never in a table: the bank's consent id and, for a product consent, the bank client id
   the bank's DELETE asks for. Once the message is gone (revoked, or given up after
   REVOCATION_RETRY_ATTEMPTS, both audited), nothing of it is left; its raw logs are written
   with no user and that client id cut out.
3. One transaction deletes the user's rows in every app. The bulky tables are deleted first,
   in single statements whose cost does not grow with Python objects (250,000 transactions
   take ~3 s on PostgreSQL); then `user.delete()` lets Django's collector
   walk every remaining relation to the user (connections, accounts, agreements, consents,
   rules, sync runs, onboarding, summaries, tokens, admin log entries…), so a model added
   later with a CASCADE to the user is covered without a change here.
4. Audit events are what retention keeps: their `user`/`actor` set to null, a random pseudonym
   (`deleted-user-<hex>`, derived from nothing, so it cannot be reversed) in `details.subject`
   so one person's trail still reads as one, and the user's email, phone and bank client id cut
   out of the details. Raw API logs (bank bodies full of the user's transactions) are deleted:
   they are operational logs, not the audit trail. A `user.deleted` event records the
   pseudonym, the revocation outcomes and the number of rows deleted per model.
"""

import logging
import secrets
from collections import Counter
from dataclasses import dataclass, field
from functools import partial

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.db import connection, models, transaction
from django.db.models.functions import Cast
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from analytics.models import AnalyticsSnapshot
from audit.capture import RawLogBuffer
from audit.models import AuditEvent, RawApiLog
from audit.services import AuditAction, audit_event_record, audit_events_anonymise
from banking.clients.errors import BankError, BankNotFoundError
from banking.models import BalanceSnapshot, BankConnection, Transaction, TransactionAggregate
from banking.services.clients import bank_client_for, team_secrets
from consents.models import Consent, ConsentKind, ConsentStatus
from consents.services import consent_revoke
from fintrack.core.exceptions import ApplicationError
from users.models import User
from users.services import password_confirm

logger = logging.getLogger(__name__)

PSEUDONYM_PREFIX = "deleted-user-"
# A retry of a failed revocation: how many, and the backoff (doubling, capped, with jitter).
REVOCATION_RETRY_ATTEMPTS = 10
REVOCATION_RETRY_FIRST_SECONDS = 60
REVOCATION_RETRY_MAX_SECONDS = 3600


@dataclass(frozen=True)
class RevocationOutcome:
    """What became of one consent at its bank when its user was deleted."""

    bank_code: str
    kind: str
    revoked: bool
    error_code: str = ""
    retrying: bool = False


@dataclass(frozen=True)
class RevocationRetry:
    """What a retry of a failed revocation needs, and nothing more (it lives in a task message)."""

    bank_code: str
    kind: str
    bank_consent_id: str
    client_id: str  # only for product consents: the bank's DELETE asks for it
    subject: str


@dataclass
class UserDeletion:
    """The outcome of deleting an account: the pseudonym left in the audit trail and the rest."""

    subject: str
    revocations: list[RevocationOutcome] = field(default_factory=list)
    rows_deleted: dict[str, int] = field(default_factory=dict)
    audit_events_anonymised: int = 0


def user_delete(*, user: User, password: str) -> UserDeletion:
    """Delete the account and every row of its data after confirming the password (see the
    module docstring); consents are revoked at the banks first, a bank that is down is
    recorded and retried later, never a reason to keep FinTrack's data."""
    password_confirm(user=user, password=password)
    user_id = user.pk
    deletion = UserDeletion(subject=PSEUDONYM_PREFIX + secrets.token_hex(8))
    retries = _consents_revoke(user=user, deletion=deletion)
    personal_values = _personal_values(user)
    with transaction.atomic():
        deletion.audit_events_anonymised = audit_events_anonymise(
            user_id=user_id,
            subject=deletion.subject,
            personal_values=personal_values,
            user_object_type=User.__name__,
        )
        deletion.rows_deleted = _rows_delete(user=user)
        audit_event_record(
            action=AuditAction.USER_DELETED,
            details={
                "subject": deletion.subject,
                "consents_revoked": sum(outcome.revoked for outcome in deletion.revocations),
                "revocations_failed": [
                    {"bank_code": o.bank_code, "kind": o.kind, "error_code": o.error_code}
                    for o in deletion.revocations
                    if not o.revoked
                ],
                "rows_deleted": deletion.rows_deleted,
            },
        )
        for retry in retries:
            transaction.on_commit(partial(_retry_later, retry=retry, attempt=0))
    logger.info(
        "account deleted as %s: %d rows, %d of %d consents revoked at the banks",
        deletion.subject,
        sum(deletion.rows_deleted.values()),
        sum(outcome.revoked for outcome in deletion.revocations),
        len(deletion.revocations),
    )
    return deletion


def _personal_values(user: User) -> list[str]:
    """What identifies the person in free text: cut out of the audit trail that stays. Besides
    email and phone, every bank client id the user had or tried (their connections' and those
    the client-id audit events name); the longest first, so none is cut out of a longer one."""
    client_ids = set(
        BankConnection.objects.filter(user=user)
        .exclude(client_id="")
        .values_list("client_id", flat=True)
    )
    set_events = AuditEvent.objects.filter(user=user, action=AuditAction.CONNECTION_CLIENT_SET)
    for details in set_events.values_list("details", flat=True):
        if isinstance(details, dict):
            client_ids.update(str(details.get(key) or "") for key in ("from", "to"))
    clients = sorted(filter(None, client_ids), key=lambda value: (-len(value), value))
    return [value for value in (user.email, user.phone, *clients) if value]


# --- 2. Consents at the banks --------------------------------------------------------------


def _consents_revoke(*, user: User, deletion: UserDeletion) -> list[RevocationRetry]:
    """Revoke each live consent of the user; failures are recorded, retryable ones returned."""
    retries: list[RevocationRetry] = []
    # Who the user is at each bank: a product consent's DELETE names the client.
    connections = BankConnection.objects.filter(user=user)
    client_ids = dict(connections.values_list("bank_code", "client_id"))
    live = Consent.objects.filter(
        user=user, status__in=[ConsentStatus.PENDING, ConsentStatus.AUTHORIZED]
    ).order_by("bank_code", "kind", "pk")
    for consent in live.select_related("user"):
        try:
            consent_revoke(consent=consent)
        except (BankError, ApplicationError) as exc:
            retryable = isinstance(exc, BankError) and exc.retryable and consent.bank_consent_id
            error_code = getattr(exc, "code", "error")
            deletion.revocations.append(
                RevocationOutcome(
                    bank_code=consent.bank_code,
                    kind=consent.kind,
                    revoked=False,
                    error_code=error_code,
                    retrying=bool(retryable),
                )
            )
            logger.warning(
                "account deletion: %s %s consent %s not revoked at the bank (%s)%s",
                consent.bank_code,
                consent.kind,
                consent.pk,
                error_code,
                ", retrying later" if retryable else "",
            )
            # With user set: the anonymisation of step 4 gives it the pseudonym.
            audit_event_record(
                action=AuditAction.CONSENT_REVOKE_FAILED,
                user=user,
                obj=consent,
                bank_code=consent.bank_code,
                details={
                    "kind": consent.kind,
                    "bank_consent_id": consent.bank_consent_id,
                    "error_code": error_code,
                    "error": str(getattr(exc, "message", exc))[:255],
                    "retrying": bool(retryable),
                    "attempt": 0,
                },
            )
            if retryable:
                retries.append(
                    RevocationRetry(
                        bank_code=consent.bank_code,
                        kind=consent.kind,
                        bank_consent_id=consent.bank_consent_id,
                        client_id=(
                            client_ids.get(consent.bank_code, "")
                            if consent.kind == ConsentKind.PRODUCTS
                            else ""
                        ),
                        subject=deletion.subject,
                    )
                )
        else:
            deletion.revocations.append(
                RevocationOutcome(bank_code=consent.bank_code, kind=consent.kind, revoked=True)
            )
    return retries


def _retry_later(*, retry: RevocationRetry, attempt: int) -> None:
    from users.tasks import consent_revocation_retry_later

    consent_revocation_retry_later(retry=retry, attempt=attempt)


def consent_revocation_retry(*, retry: RevocationRetry, attempt: int) -> str:
    """One more try at revoking a deleted user's consent at its bank: "revoked" (or already
    gone there), "retry" (the bank is still unavailable) or "gave_up"; each outcome audited."""
    # No user on the raw logs (there is none any more) and the client id cut out of them.
    raw_logs = RawLogBuffer(user=None, secrets=[*team_secrets(), retry.client_id])
    outcome, error_code = "revoked", ""
    try:
        client = bank_client_for(retry.bank_code, raw_logs=raw_logs)
        if retry.kind == ConsentKind.ACCOUNTS:
            client.revoke_account_consent(consent_id=retry.bank_consent_id)
        else:
            client.revoke_product_consent(
                consent_id=retry.bank_consent_id, client_id=retry.client_id
            )
    except BankNotFoundError:
        pass  # gone at the bank already: revoked
    except (BankError, ApplicationError) as exc:
        error_code = getattr(exc, "code", "error")
        retryable = isinstance(exc, BankError) and exc.retryable
        outcome = "retry" if retryable and attempt + 1 < REVOCATION_RETRY_ATTEMPTS else "gave_up"
    finally:
        raw_logs.close()
    details = {
        "subject": retry.subject,
        "kind": retry.kind,
        "bank_consent_id": retry.bank_consent_id,
        "attempt": attempt + 1,
    }
    if outcome == "revoked":
        audit_event_record(
            action=AuditAction.CONSENT_REVOKE_RETRIED,
            bank_code=retry.bank_code,
            details=details,
        )
    else:
        logger.warning(
            "deleted account's %s %s consent still not revoked (attempt %d, %s)%s",
            retry.bank_code,
            retry.kind,
            attempt + 1,
            error_code,
            "" if outcome == "retry" else ": giving up",
        )
        audit_event_record(
            action=AuditAction.CONSENT_REVOKE_FAILED,
            bank_code=retry.bank_code,
            details={**details, "error_code": error_code, "retrying": outcome == "retry"},
        )
    return outcome


# --- 3. Every row of the user ----------------------------------------------------------------


def _rows_delete(*, user: User) -> dict[str, int]:
    """Delete every row of the user in every app (within the caller's transaction); the number
    of rows deleted per model label."""
    counts: Counter[str] = Counter()
    # Before the rows they name are gone: admin history and sessions are found through them.
    _count(counts, _admin_log_entries(user=user).delete())
    _count(counts, _sessions(user=user).delete())
    _count(counts, RawApiLog.objects.filter(user=user).delete())
    _transactions_delete(user=user, counts=counts)
    _count(counts, BalanceSnapshot.objects.filter(account__user=user).delete())
    _count(counts, TransactionAggregate.objects.filter(user=user).delete())
    _count(counts, AnalyticsSnapshot.objects.filter(user=user).delete())
    # SET_NULL on the user (simplejwt's): deleted, not left as ownerless rows.
    _count(counts, OutstandingToken.objects.filter(user=user).delete())
    # Everything else that refers to the user, found by Django's collector.
    _count(counts, user.delete())
    return {label: count for label, count in sorted(counts.items()) if count}


def _count(counts: Counter[str], deleted: tuple[int, dict[str, int]]) -> None:
    counts.update(deleted[1])


def _transactions_delete(*, user: User, counts: Counter[str]) -> None:
    """The user's transactions, in one DELETE statement.

    `transfer_pair` (SET_NULL, a self reference) keeps Django's collector from deleting them
    in one statement: it would load every row first (250,000 of them: memory a request does
    not have, and 7x slower even in batches of primary keys). The twins pointing at them are
    unlinked first, which is all the collector would do besides; no delete signal is connected
    to transactions (the test of this module checks there is none).
    """
    rows = Transaction.objects.filter(user=user).order_by()
    Transaction.objects.filter(transfer_pair__in=rows.values("pk")).update(transfer_pair=None)
    table = connection.ops.quote_name(Transaction._meta.db_table)
    user_column = connection.ops.quote_name(Transaction._meta.get_field("user").column)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE {user_column} = %s", [user.pk])  # noqa: S608
        counts[Transaction._meta.label] += max(cursor.rowcount, 0)


def _admin_log_entries(*, user: User) -> models.QuerySet[LogEntry]:
    """Admin history about the user or about any row with a foreign key to the user: its
    `object_repr` is the row's text (a user's is their email)."""
    user_type = ContentType.objects.get_for_model(User)
    condition = models.Q(content_type=user_type, object_id=str(user.pk))
    for relation in _relations_to_user():
        model = relation.related_model
        if model is LogEntry:
            continue
        keys = (
            model._base_manager.filter(**{relation.field.name: user})
            .annotate(key=Cast("pk", models.TextField()))
            .values("key")
        )
        condition |= models.Q(
            content_type=ContentType.objects.get_for_model(model), object_id__in=keys
        )
    return LogEntry.objects.filter(condition)


def _relations_to_user() -> list:
    """Every foreign key and one-to-one to the user model, hidden ones (related_name "+") too."""
    return [
        relation
        for relation in User._meta.get_fields(include_hidden=True)
        if relation.auto_created
        and not relation.concrete
        and (relation.one_to_many or relation.one_to_one)
    ]


def _sessions(*, user: User) -> models.QuerySet[Session]:
    """The user's Django sessions (the admin's): they hold the user id in their encoded data."""
    mine = [
        session.pk
        for session in Session.objects.iterator(chunk_size=500)
        if session.get_decoded().get("_auth_user_id") == str(user.pk)
    ]
    return Session.objects.filter(pk__in=mine)
