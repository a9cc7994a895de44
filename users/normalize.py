"""Normalisation of login identifiers, so one person cannot register twice by changing case."""

import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

_PHONE_DIGITS = re.compile(r"\d")


def normalize_email(value: str) -> str:
    value = (value or "").strip().lower()
    validate_email(value)
    return value


def normalize_phone(value: str) -> str:
    """Return E.164 (+79161234567). A Russian 8XXXXXXXXXX is read as +7XXXXXXXXXX."""
    raw = (value or "").strip()
    digits = "".join(_PHONE_DIGITS.findall(raw))
    if len(digits) == 11 and digits.startswith("8") and not raw.startswith("+"):
        digits = "7" + digits[1:]
    if not 10 <= len(digits) <= 15 or re.search(r"[^\d\s()+\-]", raw):
        raise ValidationError("Enter a phone number in international format, e.g. +79161234567.")
    return "+" + digits
