from django.db import migrations


def seed(apps, schema_editor):
    """Add the categories of the live banks' words (travel, business income, interest, refunds):
    `categories_seed` creates only the codes a database does not have yet."""
    from banking.categories import categories_seed

    categories_seed(apps.get_model("banking", "TransactionCategory"))


class Migration(migrations.Migration):
    dependencies = [("banking", "0012_category_rules")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
