"""Normalisation of login identifiers, so one person cannot register twice by changing case,
by a compatibility form of a letter, or by a character nobody sees."""

import re
import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

# ASCII digits only (NFKC has made a fullwidth ３ a 3 already; an Arabic-Indic ٣ is refused).
_PHONE_DIGITS = re.compile(r"\d", re.ASCII)
# Characters that render as nothing: format characters (Cf: zero-width space/joiner/non-joiner,
# BOM, direction marks, soft hyphen …), controls, unassigned and private-use code points, and the
# Hangul fillers and combining grapheme joiner, which are letters/marks by category yet blank.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc", "Cn", "Co", "Cs"})
_BLANK_LETTERS = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0")
INVISIBLE_CODE = "invisible_characters"


def invisible_characters(value: str) -> list[str]:
    """The code points of `value` that render as nothing, as U+XXXX (empty when there are none)."""
    return [
        f"U+{ord(ch):04X}"
        for ch in value
        if unicodedata.category(ch) in _INVISIBLE_CATEGORIES or ch in _BLANK_LETTERS
    ]


def normalize_email(value: str) -> str:
    """NFKC, trimmed, lower-cased, validated; an e-mail with an invisible character is refused.

    NFKC folds compatibility forms into the letters they show (ａ fullwidth → a, ﬁ → fi), so a
    look-alike typed with them is the same address; invisible characters (a zero-width space
    inside anna@example.com) are refused, not stripped, so nothing is silently rewritten.
    """
    value = unicodedata.normalize("NFKC", value or "").strip()
    hidden = invisible_characters(value)
    if hidden:
        raise ValidationError(
            "The email address contains invisible characters (%(chars)s); type it again.",
            code=INVISIBLE_CODE,
            params={"chars": ", ".join(dict.fromkeys(hidden))},
        )
    value = value.lower()
    validate_email(value)
    return value


def normalize_phone(value: str) -> str:
    """Return E.164 (+79161234567). A Russian 8XXXXXXXXXX is read as +7XXXXXXXXXX."""
    raw = unicodedata.normalize("NFKC", value or "").strip()
    digits = "".join(_PHONE_DIGITS.findall(raw))
    if len(digits) == 11 and digits.startswith("8") and not raw.startswith("+"):
        digits = "7" + digits[1:]
    if not 10 <= len(digits) <= 15 or re.search(r"[^\d\s()+\-]", raw, re.ASCII):
        raise ValidationError("Enter a phone number in international format, e.g. +79161234567.")
    return "+" + digits
