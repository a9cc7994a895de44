"""E-mails stored before NFKC normalisation (users.normalize.normalize_email) in their NFKC form,
so the login, which normalises what it is given, finds them. A row whose NFKC form another user
already has is left as it is (an operator resolves the pair). Invisible characters are not
stripped here: registration refuses them from now on; an existing address with one is kept."""

import unicodedata

from django.db import migrations


def normalize_emails(apps, schema_editor):
    User = apps.get_model("users", "User")
    taken = set(User.objects.filter(email__isnull=False).values_list("email", flat=True))
    for user in User.objects.filter(email__isnull=False).only("pk", "email").iterator():
        normal = unicodedata.normalize("NFKC", user.email).strip().lower()
        if normal != user.email and normal not in taken:
            taken.discard(user.email)
            taken.add(normal)
            user.email = normal
            user.save(update_fields=["email"])


class Migration(migrations.Migration):
    dependencies = [("users", "0004_outstanding_tokens_hashed")]

    operations = [migrations.RunPython(normalize_emails, migrations.RunPython.noop, elidable=True)]
