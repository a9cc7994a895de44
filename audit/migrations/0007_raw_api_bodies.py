"""Response bodies stored once (issue 22): `raw_api_bodies`, and `raw_api_logs.body_id`.

A sync's no-op incremental read fetches the very pages it fetched an hour ago; each call keeps
its metadata row, the body is stored once per (user, bank, method, endpoint, content) and
referenced. On PostgreSQL the body column is compressed with lz4 like the logs' payload (0005),
and the text-pattern index Django adds to a unique CharField goes (digests are only compared for
equality). `body_id` has no constraint and no index: bodies are purged by age, never by reference.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import DatabaseError, migrations, models, transaction

import fintrack.core.fields


def _postgres_tuning(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'raw_api_bodies' "
            "AND indexname LIKE %s",
            ["%digest%_like"],
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("ALTER TABLE raw_api_bodies ALTER COLUMN payload SET COMPRESSION lz4")
    except DatabaseError:  # a server built without lz4 keeps pglz
        pass


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0006_raw_logs_payload_verbatim"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="RawApiBody",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("digest", models.CharField(help_text="SHA-256, hex.", max_length=64, unique=True)),
                ("payload", fintrack.core.fields.VerbatimJSONField(blank=True, null=True)),
                (
                    "size_bytes",
                    models.PositiveIntegerField(help_text="Bytes of the stored JSON text."),
                ),
                ("first_exchange_id", models.UUIDField()),
                ("first_seen_at", models.DateTimeField()),
                ("last_seen_at", models.DateTimeField(db_index=True)),
                (
                    "user",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"db_table": "raw_api_bodies"},
        ),
        migrations.AddField(
            model_name="rawapilog",
            name="body",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="audit.rawapibody",
            ),
        ),
        migrations.RunPython(_postgres_tuning, migrations.RunPython.noop),
    ]
