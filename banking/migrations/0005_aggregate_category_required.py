import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("banking", "0004_alter_account_current_balance")]

    operations = [
        migrations.RemoveConstraint(
            model_name="transactionaggregate", name="aggregate_unique_day_category"
        ),
        # Aggregates are derived data, rebuilt by the sync; none exist before this migration.
        migrations.RunSQL(
            "DELETE FROM transaction_aggregates", reverse_sql=migrations.RunSQL.noop
        ),
        migrations.AlterField(
            model_name="transactionaggregate",
            name="category",
            field=models.ForeignKey(
                help_text="Uncategorised transactions count under 'other' / 'other_income'.",
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="banking.transactioncategory",
            ),
        ),
        migrations.AddConstraint(
            model_name="transactionaggregate",
            constraint=models.UniqueConstraint(
                fields=("user", "date", "category", "currency"),
                name="aggregate_unique_day_category",
            ),
        ),
    ]
