"""Model fields of our own: EncryptedTextField (secrets a database dump must not reveal) and
VerbatimJSONField (a bank's JSON, stored as sent)."""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import models
from psycopg.types.json import Json


@lru_cache(maxsize=4)
def _fernet(key_material: str) -> Fernet:
    # FIELD_ENCRYPTION_KEY may be a Fernet key or any passphrase; derive a 32-byte key either way.
    digest = hashlib.sha256(key_material.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def get_fernet() -> Fernet:
    return _fernet(settings.FIELD_ENCRYPTION_KEY or f"derived:{settings.SECRET_KEY}")


class EncryptedTextField(models.TextField):
    """Text encrypted with Fernet (AES-128-CBC + HMAC) in the column, plain in Python."""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return get_fernet().encrypt(value.encode()).decode()

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        try:
            return get_fernet().decrypt(value.encode()).decode()
        except InvalidToken:
            # Key rotated without re-encryption: treat the secret as absent, so it is fetched anew.
            return ""


class VerbatimJSONField(models.JSONField):
    """JSON kept as the text it was written with: PostgreSQL's `json` type, not `jsonb`.

    For documents stored to be read back whole, never searched inside: what a bank sent. `json`
    keeps the text as received (key order, duplicate keys, how numbers were spelled), and storing
    it only validates it; `jsonb` parses it into a tree (3× the server's CPU to store a 60 KB page
    of transactions, measured) and prints it back on every read. A `json` column has no equality
    operator: never DISTINCT, GROUP BY or compare by one. Other databases keep JSON as text
    already; there the field is a plain JSONField.
    """

    def db_type(self, connection):
        if connection.vendor == "postgresql":
            return "json"
        return super().db_type(connection)

    def get_db_prep_value(self, value, connection, prepared=False):
        if connection.vendor != "postgresql":
            return super().get_db_prep_value(value, connection, prepared)
        if not prepared:
            value = self.get_prep_value(value)
        # A `json` parameter: a jsonb one (JSONField's) would be parsed into a tree, then printed.
        adapted = connection.ops.adapt_json_value(value, self.encoder)
        return Json(adapted.obj, dumps=adapted.dumps)

    def from_db_value(self, value, expression, connection):
        if connection.vendor == "postgresql":
            # psycopg decodes `json` itself (Django has it hand jsonb over as text instead).
            return value
        return super().from_db_value(value, expression, connection)
