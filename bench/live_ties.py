"""Live-style booking times for the synthetic data of benchmarks 5 and 6 (SPEC §17).

`bench.common.synthetic_user` books every row at its own random second. The live banks (and the
sandbox's live-style generator, sandbox/live.py) book most of a day's card purchases at one
instant of the day, to the microsecond: many rows of an account tie on `booking_date`. The feed's
keyset (booking_date, id) and the analytics' day buckets must hold on such data, so the benches
tie theirs the way sandbox/live.py does, before aggregates and snapshots are computed: for each
account and UTC day, one batch instant between 14:00 and 24:00 UTC (a day's rows then fall on the
next local day in Moscow time now and then, as live rows do), and ~70% of the day's card rows
(those with an MCC) booked at it. Salary, rent and other rows keep their own times.

Deterministic from the account's bank id, the day and the row's index in it, so two users built
from the same per-day seeds (benchmark 5's 1 year and 10 years) tie their recent days alike.
PostgreSQL only (the benches' database).
"""

TIED_SHARE_PERCENT = 70


def tie_booking_times(user) -> dict:
    """Book ~70% of each account-day's card rows of `user` at the day's batch instant; returns
    the rows tied and the largest tie group (rows of one account on one instant)."""
    from django.db import connection

    from banking.models import Account, Transaction

    transactions = Transaction._meta.db_table
    accounts = Account._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {transactions} AS t
            SET booking_date = batch.instant, value_date = batch.instant
            FROM (
                SELECT t2.id,
                       date_trunc('day', t2.booking_date)
                       + interval '14 hours'
                       + make_interval(secs => (
                           abs(hashtext(a.bank_account_id || ':' || t2.booking_date::date)::bigint)
                           %% 36000
                           + abs(hashtext(
                               a.bank_account_id || ':us:' || t2.booking_date::date
                             )::bigint) %% 1000000 / 1000000.0
                         )::double precision
                         ) AS instant
                FROM {transactions} AS t2
                JOIN {accounts} AS a ON a.id = t2.account_id
                WHERE t2.user_id = %s AND t2.mcc <> ''
                  AND abs(hashtext(
                        a.bank_account_id || ':' || t2.booking_date::date || ':'
                        || split_part(t2.bank_transaction_id, '-', 4)
                      )::bigint) %% 100 < %s
            ) AS batch
            WHERE t.id = batch.id
            """,
            [user.pk, TIED_SHARE_PERCENT],
        )
        tied = cursor.rowcount
        cursor.execute(
            f"""
            SELECT coalesce(max(n), 0) FROM (
                SELECT count(*) AS n FROM {transactions}
                WHERE user_id = %s GROUP BY account_id, booking_date
            ) AS groups
            """,
            [user.pk],
        )
        largest = cursor.fetchone()[0]
    return {"tied_rows": tied, "largest_group": largest}
