"""EncryptedTextField: secrets stored so a database dump does not reveal them."""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import models


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
