"""Refresh tokens in clear → their SHA-256: every row of token_blacklist_outstandingtoken that
still holds an encoded token gets `sha256:<hex>` of it (users.tokens.token_digest), so a copy of
the table mints nothing. jti, expiry and blacklist rows are kept: rotation and logout still work
for every token already handed out."""

import hashlib

from django.db import migrations

PREFIX = "sha256:"


def hash_tokens(apps, schema_editor):
    OutstandingToken = apps.get_model("token_blacklist", "OutstandingToken")
    rows = OutstandingToken.objects.exclude(token__startswith=PREFIX).only("pk", "token")
    batch = []
    for row in rows.iterator(chunk_size=1000):
        row.token = PREFIX + hashlib.sha256(row.token.encode()).hexdigest()
        batch.append(row)
        if len(batch) >= 1000:
            OutstandingToken.objects.bulk_update(batch, ["token"])
            batch = []
    if batch:
        OutstandingToken.objects.bulk_update(batch, ["token"])


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0003_revoked_access_token"),
        ("token_blacklist", "0013_alter_blacklistedtoken_options_and_more"),
    ]

    operations = [migrations.RunPython(hash_tokens, migrations.RunPython.noop, elidable=True)]
