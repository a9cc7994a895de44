"""Transaction aggregates: per user, day, category and currency, rebuilt from a date onwards.

What counts: booked, pending and refunded transactions; declined ones and own-account transfers are
excluded. Credits add to `income`, debits (as positive numbers) to `spending`. Days are the user's
local calendar days (`User.time_zone`, default Europe/Moscow): a row booked 2025-11-30T22:30Z counts
on 2025-12-01 in Moscow. The database converts each instant itself — PostgreSQL with
`AT TIME ZONE '<zone>'`, SQLite through Django's zoneinfo-backed cast function — so the day is right
for any IANA zone, across DST changes too. Uncategorised transactions count under "other_income"
(credits) or "other" (debits).

One rebuild of a user's aggregates at a time: the syncs of several banks of one user finish
together, and two delete-then-insert rebuilds overlapping in READ COMMITTED collide on
`aggregate_unique_day_category` (the second one's DELETE cannot see the rows the first inserts).
`user_aggregates_lock` takes a PostgreSQL advisory lock per user, held until the caller's
transaction ends, so the second rebuild starts after the first committed and reads its rows and
its transactions: the result is that of the rebuilds run one after the other. An upsert alone
would not do: a rebuild reading a snapshot taken before the other sync committed would overwrite
fresher sums with staler ones. SQLite needs no lock: it runs one writer at a time.
"""

from datetime import date

from django.db import connection
from django.db import transaction as db_transaction
from django.db.models import Case, Count, DecimalField, F, IntegerField, Sum, Value, When
from django.db.models.functions import Coalesce, TruncDate

from banking.models import Transaction, TransactionAggregate, TransactionCategory, TransactionStatus
from fintrack.core.localtime import local_day_start, user_zone

EXCLUDED_STATUSES = (TransactionStatus.DECLINED,)
_MONEY = DecimalField(max_digits=18, decimal_places=2)
# pg_advisory_xact_lock(int4, int4): the first key names FinTrack's per-user money lock, the
# second is the user id folded into int4 (two users sharing a key only wait for each other).
_MONEY_LOCK_NAMESPACE = 0x46540001
_INT4_KEYS = 2**31


def user_aggregates_lock(*, user_id: int) -> None:
    """Wait for, then hold, the user's aggregates lock until the current transaction ends."""
    if not connection.in_atomic_block:
        raise RuntimeError("user_aggregates_lock needs a transaction: it is released at its end")
    if connection.vendor != "postgresql":
        return  # SQLite serialises writers: a second rebuild waits for the first to commit
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)", [_MONEY_LOCK_NAMESPACE, user_id % _INT4_KEYS]
        )


def counted_transactions(*, user):
    """The user's transactions that count as income or spending (no declined, no own transfers)."""
    return Transaction.objects.filter(user=user, is_own_transfer=False).exclude(
        status__in=EXCLUDED_STATUSES
    )


def transaction_aggregates_recompute(*, user, since_date: date | None) -> int:
    """Rebuild the user's aggregates for local days ≥ since_date (all if None); returns rows."""
    zone = user_zone(user)
    rows = counted_transactions(user=user)
    stale = TransactionAggregate.objects.filter(user=user)
    if since_date is not None:
        # Rows from the instant the local day since_date begins: exactly the local days rebuilt.
        rows = rows.filter(booking_date__gte=local_day_start(zone, since_date))
        stale = stale.filter(date__gte=since_date)
    fallback = dict(
        TransactionCategory.objects.filter(code__in=("other", "other_income")).values_list(
            "code", "id"
        )
    )
    bucket = Coalesce(
        "category_id",
        Case(
            When(amount__gt=0, then=Value(fallback.get("other_income"))),
            default=Value(fallback.get("other")),
            output_field=IntegerField(),
        ),
        output_field=IntegerField(),
    )
    grouped = (
        rows.annotate(day=TruncDate("booking_date", tzinfo=zone), bucket=bucket)
        .values("day", "bucket", "currency")
        .annotate(
            income_sum=Sum(
                Case(When(amount__gt=0, then=F("amount")), default=Value(0), output_field=_MONEY)
            ),
            spending_sum=Sum(
                Case(When(amount__lt=0, then=-F("amount")), default=Value(0), output_field=_MONEY)
            ),
            count=Count("id"),
        )
        .order_by()
    )
    # INSERT … SELECT: the database groups and writes in one statement; no row comes back to
    # Python (a first sync of 80,000 transactions makes ~13,000 day × category rows).
    # Only the model's table name and Django's compiled SELECT are formatted in; values are
    # parameters.
    select_sql, params = grouped.query.sql_with_params()
    sql = (
        f'INSERT INTO "{TransactionAggregate._meta.db_table}" '  # noqa: S608
        "(user_id, date, category_id, currency, income, spending, transaction_count) "
        'SELECT %s, g."day", g."bucket", g."currency", g."income_sum", g."spending_sum", '
        f'g."count" FROM ({select_sql}) g'
    )
    with db_transaction.atomic():
        user_aggregates_lock(user_id=user.pk)
        stale.delete()
        with connection.cursor() as cursor:
            cursor.execute(sql, (user.pk, *params))
            return cursor.rowcount
