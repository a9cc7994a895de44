"""Transactions' raw_json as PostgreSQL `json`: written for every row, only ever read whole."""

import fintrack.core.fields
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("banking", "0008_transactions_loan_instalments_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="transaction",
            name="raw_json",
            field=fintrack.core.fields.VerbatimJSONField(blank=True, default=dict),
        ),
    ]
