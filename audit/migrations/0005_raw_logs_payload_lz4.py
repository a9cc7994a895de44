"""Raw-log payloads (a bank page is ~60 KB of JSON) compressed with lz4 on PostgreSQL.

pglz, the default, costs about twice the CPU per page written; lz4 stores a little more. A
server built without lz4 keeps pglz; other databases are untouched.
"""

from django.db import DatabaseError, migrations, transaction


def _set_compression(method: str):
    def apply(apps, schema_editor):
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            return
        try:
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                cursor.execute(
                    f"ALTER TABLE raw_api_logs ALTER COLUMN payload SET COMPRESSION {method}"
                )
        except DatabaseError:  # "compression method lz4 not supported"
            pass

    return apply


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_raw_logs_drop_user_index")]

    operations = [migrations.RunPython(_set_compression("lz4"), _set_compression("pglz"))]
