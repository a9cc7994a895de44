# The bank client id belongs to a bank connection now (issue 19): registration needs no pool.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("users", "0005_emails_nfkc"),
        # Copies every user's client id to their connections before the column goes.
        ("banking", "0015_connection_identity_and_states"),
    ]

    operations = [
        migrations.RemoveField(model_name="user", name="external_client_id"),
    ]
