from django.db import migrations


def seed(apps, schema_editor):
    from banking.categories import CATEGORIES

    TransactionCategory = apps.get_model("banking", "TransactionCategory")
    for code, name_en, name_ru, kind, essential in CATEGORIES:
        TransactionCategory.objects.update_or_create(
            code=code,
            defaults={"name_en": name_en, "name_ru": name_ru, "kind": kind, "is_essential": essential},
        )


class Migration(migrations.Migration):
    dependencies = [("banking", "0002_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
