"""Drop two raw_api_logs indexes no query uses (every bank call's log INSERT paid for them).

The single-column user_id index: rawlog_user_recent leads with user_id. The text-pattern copy of
the correlation_id index PostgreSQL gets for a CharField (for LIKE, which nothing runs on it;
equality uses the plain index, which stays). Only the indexes go: altering the field the usual
way would drop and re-add the foreign key, re-checking every log row under a lock.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

USER_INDEX = "raw_api_logs_user_id_7e21a2ec"
LIKE_INDEX = "raw_api_logs_correlation_id_f03ae243_like"


def drop_indexes(apps, schema_editor):
    schema_editor.execute(f'DROP INDEX IF EXISTS "{USER_INDEX}"')
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f'DROP INDEX IF EXISTS "{LIKE_INDEX}"')


def create_indexes(apps, schema_editor):
    schema_editor.execute(f'CREATE INDEX "{USER_INDEX}" ON "raw_api_logs" ("user_id")')
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f'CREATE INDEX "{LIKE_INDEX}" ON "raw_api_logs" ("correlation_id" varchar_pattern_ops)'
        )


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_raw_logs_purge_schedule"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="rawapilog",
                    name="user",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_indexes, create_indexes)],
        ),
    ]
