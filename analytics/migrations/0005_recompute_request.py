"""The recomputation marker moves from the cache to the database (analytics.models.RecomputeRequest),
and on PostgreSQL the dashboard's one read becomes a function whose plan the session keeps
(analytics.selectors: _DASHBOARD_SQL is the same query, sent as text on other databases).

The function's body is frozen here, as a migration must be: a later change to the dashboard read,
or to a column it returns, replaces the function in a new migration. The test that compares the
function with the query (analytics/tests/test_dashboard_rows.py) fails until it does.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

DASHBOARD_ROWS_FUNCTION = """
CREATE OR REPLACE FUNCTION analytics_dashboard_rows(p_user bigint, p_marker_since timestamptz)
RETURNS TABLE (
    snapshot_id bigint,
    snapshot_created_at timestamptz,
    data_fresh_as_of timestamptz,
    currency varchar,
    summary_json text,
    summary_json_version smallint,
    bank_code varchar,
    status varchar,
    status_reason varchar,
    next_retry_at timestamptz,
    last_success_at timestamptz,
    last_sync_at timestamptz,
    last_error text,
    account_consent_authorised boolean,
    account_consent_expires_at timestamptz,
    product_consent_authorised boolean,
    product_consent_expires_at timestamptz,
    recompute_scheduled boolean
)
LANGUAGE plpgsql STABLE AS $body$
BEGIN
    RETURN QUERY
    SELECT s.id, s.created_at, s.data_fresh_as_of, s.currency, s.summary_json,
        s.summary_json_version,
        c.bank_code, c.status, c.status_reason, c.next_retry_at, c.last_success_at,
        c.last_sync_at, c.last_error,
        EXISTS (SELECT 1 FROM consents AS a WHERE a.user_id = c.user_id
            AND a.bank_code = c.bank_code AND a.kind = 'accounts' AND a.status = 'authorized'),
        (SELECT a.expires_at FROM consents AS a WHERE a.user_id = c.user_id
            AND a.bank_code = c.bank_code AND a.kind = 'accounts' AND a.status = 'authorized'
            LIMIT 1),
        EXISTS (SELECT 1 FROM consents AS a WHERE a.user_id = c.user_id
            AND a.bank_code = c.bank_code AND a.kind = 'products' AND a.status = 'authorized'),
        (SELECT a.expires_at FROM consents AS a WHERE a.user_id = c.user_id
            AND a.bank_code = c.bank_code AND a.kind = 'products' AND a.status = 'authorized'
            LIMIT 1),
        EXISTS (SELECT 1 FROM analytics_recompute_requests AS m
            WHERE m.user_id = p_user AND m.requested_at >= p_marker_since)
    FROM (SELECT 1 AS one) AS u
    LEFT JOIN (
        SELECT * FROM analytics_snapshots AS n WHERE n.user_id = p_user
        ORDER BY n.created_at DESC, n.id DESC LIMIT 1
    ) AS s ON 1 = 1
    LEFT JOIN bank_connections AS c ON c.user_id = p_user
    ORDER BY c.bank_code;
END
$body$
"""
DROP_DASHBOARD_ROWS_FUNCTION = (
    "DROP FUNCTION IF EXISTS analytics_dashboard_rows(bigint, timestamptz)"
)


def _on_postgresql(sql: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0004_analyticssnapshot_summary_json"),
        ("users", "0008_connect_request_kinds_and_reaper_schedule"),
        ("banking", "0016_bank_circuit_states"),
        ("consents", "0005_consent_lifecycle_schedule"),
    ]

    operations = [
        migrations.CreateModel(
            name="RecomputeRequest",
            fields=[
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="analytics_recompute_request",
                        serialize=False,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                ("requested_at", models.DateTimeField()),
            ],
            options={
                "db_table": "analytics_recompute_requests",
            },
        ),
        migrations.RunPython(
            _on_postgresql(DASHBOARD_ROWS_FUNCTION),
            _on_postgresql(DROP_DASHBOARD_ROWS_FUNCTION),
        ),
    ]
