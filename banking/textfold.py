"""Text folding for matching and search: one definition, used by rules and search alike.

`fold` is pure Python so it gives the same answer on SQLite (whose LOWER() knows only ASCII)
and PostgreSQL; queries compare against values folded the same way.
"""

import re

_SPACES = re.compile(r"\s+")


def fold(text: str | None) -> str:
    """Lowercase, 'ё' → 'е', runs of whitespace collapsed to one space, ends stripped."""
    if not text:
        return ""
    return _SPACES.sub(" ", text.lower().replace("ё", "е")).strip()


def merchant_display_name(*, merchant_name: str | None, description: str | None) -> str:
    """The merchant as a person names it: "Пятёрочка - Москва" → "Пятёрочка" (city dropped).

    The bank's merchant name when it sends one, else the description's "<Merchant> - <City>"
    shape (SPEC §17); "" when neither looks like a merchant.
    """
    for text in (merchant_name, description):
        if text and text.strip():
            name, separator, _city = text.partition(" - ")
            if text is merchant_name or separator:
                return name.strip()
    return ""
