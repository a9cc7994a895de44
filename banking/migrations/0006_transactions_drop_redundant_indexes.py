"""Drop the transactions indexes no query needs (each INSERT of the sync paid for them).

The single-column indexes on user_id and account_id are covered by tx_user_feed and by the unique
key / tx_account_feed (same leading column); created_at and category_id are never searched on
transactions; transfer_pair_id keeps a partial index (only paired rows) for the SET NULL of a
deleted twin. The database side only drops indexes: altering the fields the usual way would drop
and re-add each foreign key, re-checking every row of the largest table under a lock.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# Index name (as Django named it in 0001) → column.
DROPPED = {
    "transactions_user_id_766cc893": "user_id",
    "transactions_account_id_d92b47af": "account_id",
    "transactions_category_id_65740af9": "category_id",
    "transactions_transfer_pair_id_5db2fdaf": "transfer_pair_id",
    "transactions_created_at_3143a260": "created_at",
}


class Migration(migrations.Migration):
    dependencies = [
        ("banking", "0005_aggregate_category_required"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="transaction",
                    name="account",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="transactions",
                        to="banking.account",
                    ),
                ),
                migrations.AlterField(
                    model_name="transaction",
                    name="category",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="banking.transactioncategory",
                    ),
                ),
                migrations.AlterField(
                    model_name="transaction",
                    name="created_at",
                    field=models.DateTimeField(auto_now_add=True),
                ),
                migrations.AlterField(
                    model_name="transaction",
                    name="transfer_pair",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="banking.transaction",
                    ),
                ),
                migrations.AlterField(
                    model_name="transaction",
                    name="user",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="transactions",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    [f'DROP INDEX IF EXISTS "{name}"' for name in DROPPED],
                    reverse_sql=[
                        f'CREATE INDEX "{name}" ON "transactions" ("{column}")'
                        for name, column in DROPPED.items()
                    ],
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="transaction",
            index=models.Index(
                condition=models.Q(("transfer_pair__isnull", False)),
                fields=["transfer_pair"],
                name="tx_transfer_pair",
            ),
        ),
    ]
