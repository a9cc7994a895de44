"""Raw-log payloads as PostgreSQL `json`: the text the bank sent, kept as is (see VerbatimJSONField).

Changing a column's type resets its compression to the server's default, so lz4 (0005) is set
again afterwards, and again after the way back.
"""

from importlib import import_module

from django.db import migrations

import fintrack.core.fields

set_compression = import_module("audit.migrations.0005_raw_logs_payload_lz4")._set_compression


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_raw_logs_payload_lz4")]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, set_compression("lz4")),
        migrations.AlterField(
            model_name="rawapilog",
            name="payload",
            field=fintrack.core.fields.VerbatimJSONField(blank=True, null=True),
        ),
        migrations.RunPython(set_compression("lz4"), migrations.RunPython.noop),
    ]
