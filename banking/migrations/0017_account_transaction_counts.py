"""Each account's stored transactions, counted by the database as rows come and go.

Triggers on `transactions` keep `account_transaction_counts` (banking.models.
AccountTransactionCount) in the writing statement's own transaction, whatever wrote or deleted
the rows. PostgreSQL: one statement-level trigger per INSERT (COPY too) and per DELETE over its
transition table, a GROUP BY of the rows it touched (a COPY of 1,000 rows pays ~1 ms), and a
TRUNCATE empties the counts. SQLite has row-level triggers only: one upsert per row. The counts
of the rows already stored are taken here, with writes to `transactions` held off meanwhile.
"""

import django.db.models.deletion
from django.db import migrations, models

POSTGRESQL = [
    """
    CREATE FUNCTION account_transaction_counts_added() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO account_transaction_counts (account_id, stored)
        SELECT account_id, count(*) FROM added GROUP BY account_id ORDER BY account_id
        ON CONFLICT (account_id)
        DO UPDATE SET stored = account_transaction_counts.stored + excluded.stored;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION account_transaction_counts_removed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE account_transaction_counts AS counts SET stored = counts.stored - gone.rows
        FROM (SELECT account_id, count(*) AS rows FROM removed GROUP BY account_id) AS gone
        WHERE counts.account_id = gone.account_id;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION account_transaction_counts_emptied() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM account_transaction_counts;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER account_transaction_counts_added AFTER INSERT ON transactions
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION account_transaction_counts_added()
    """,
    """
    CREATE TRIGGER account_transaction_counts_removed AFTER DELETE ON transactions
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
    EXECUTE FUNCTION account_transaction_counts_removed()
    """,
    """
    CREATE TRIGGER account_transaction_counts_emptied AFTER TRUNCATE ON transactions
    FOR EACH STATEMENT EXECUTE FUNCTION account_transaction_counts_emptied()
    """,
]
POSTGRESQL_DROP = [
    "DROP TRIGGER account_transaction_counts_added ON transactions",
    "DROP TRIGGER account_transaction_counts_removed ON transactions",
    "DROP TRIGGER account_transaction_counts_emptied ON transactions",
    "DROP FUNCTION account_transaction_counts_added()",
    "DROP FUNCTION account_transaction_counts_removed()",
    "DROP FUNCTION account_transaction_counts_emptied()",
]

SQLITE = [
    """
    CREATE TRIGGER account_transaction_counts_added AFTER INSERT ON transactions
    BEGIN
        INSERT INTO account_transaction_counts (account_id, stored) VALUES (NEW.account_id, 1)
        ON CONFLICT (account_id) DO UPDATE SET stored = stored + 1;
    END
    """,
    """
    CREATE TRIGGER account_transaction_counts_removed AFTER DELETE ON transactions
    BEGIN
        UPDATE account_transaction_counts SET stored = stored - 1
        WHERE account_id = OLD.account_id;
    END
    """,
]
SQLITE_DROP = [
    "DROP TRIGGER account_transaction_counts_added",
    "DROP TRIGGER account_transaction_counts_removed",
]

# The rows stored before the triggers, counted once they run (so none is missed or counted twice).
INITIAL_COUNTS = """
    INSERT INTO account_transaction_counts (account_id, stored)
    SELECT account_id, count(*) FROM transactions GROUP BY account_id
"""


def _statements(vendor: str, *, drop: bool) -> list[str]:
    if vendor == "postgresql":
        return POSTGRESQL_DROP if drop else POSTGRESQL
    if vendor == "sqlite":
        return SQLITE_DROP if drop else SQLITE
    raise NotImplementedError(f"transaction counts: no triggers for {vendor}")


def _add_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        # No write to transactions between the triggers' start and the initial counts.
        schema_editor.execute("LOCK TABLE transactions IN SHARE ROW EXCLUSIVE MODE")
    for statement in _statements(vendor, drop=False):
        schema_editor.execute(statement)
    schema_editor.execute(INITIAL_COUNTS)


def _drop_triggers(apps, schema_editor):
    for statement in _statements(schema_editor.connection.vendor, drop=True):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("banking", "0016_bank_circuit_states"),
    ]

    operations = [
        migrations.CreateModel(
            name="AccountTransactionCount",
            fields=[
                (
                    "account",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="transaction_count",
                        serialize=False,
                        to="banking.account",
                    ),
                ),
                ("stored", models.BigIntegerField(default=0)),
            ],
            options={
                "db_table": "account_transaction_counts",
            },
        ),
        migrations.RunPython(_add_triggers, _drop_triggers),
    ]
