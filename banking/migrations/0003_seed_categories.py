from django.db import migrations


def seed(apps, schema_editor):
    from banking.categories import categories_seed

    categories_seed(apps.get_model("banking", "TransactionCategory"))


class Migration(migrations.Migration):
    dependencies = [("banking", "0002_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
