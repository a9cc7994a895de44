"""What the OpenAPI schema says about the API's shared vocabulary, in one place: money, bank
codes, the time format (SPECTACULAR_SETTINGS runs `vocabulary_postprocess` after
drf-spectacular's own enum hook).

Money is a DecimalField with two decimal places; DRF renders it quantized ("0" → "0.00"), so the
schema states the exact shape (`^-?\\d{1,16}\\.\\d{2}$`) instead of drf-spectacular's "up to two
decimals". Every `bank_code` path parameter lists the configured banks."""

import re

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

MONEY_EXAMPLE = "1250.00"
# drf-spectacular's pattern for max_digits=N, decimal_places=2: ^-?\d{0,N-2}(?:\.\d{0,2})?$
_UP_TO_TWO_PLACES = re.compile(r"^\^-\?\\d\{0,(\d+)\}\(\?:\\\.\\d\{0,2\}\)\?\$$")

API_DESCRIPTION = """Multi-bank personal finance: accounts, transactions, Save-to-Spend, health.

One vocabulary on every endpoint:

- `bank_code` (`vbank`, `abank`, `sbank`) names a bank; `merchant_name` a merchant (without the
  city); flat category fields are `category_code`, `category_name_en`, `category_name_ru` (an
  object `category` is `{code, name_en, name_ru}`); `interest_rate` a rate in percent a year.
- Ids of FinTrack's own objects are `id` on the object and `<thing>_id` elsewhere
  (`account_id`, `debt_id`, `sync_run_id`); ids a bank gave are `bank_<thing>_id`
  (`bank_account_id`, `bank_agreement_id`, `bank_product_id`, `bank_consent_id`).
- Money is a string with exactly two decimals (`"0.00"`, `"-12.50"`), and an object with money
  carries its `currency`. Rates are strings with their own precision (`interest_rate`: three
  decimals).
- Timestamps are UTC with `Z` (`2026-12-01T15:00:00Z`); where the day matters, `local_date` is
  that day in your profile's `time_zone` (YYYY-MM-DD). Plain dates are YYYY-MM-DD.
- Every filter is validated: an unknown bank code, enum value, bad date or number is a 400
  `validation_error` naming the field in `extra.fields`. Query parameters an operation does not
  list are ignored.
- Errors have one shape: `{"code", "message", "extra"}`.
"""


@extend_schema_field({"$ref": "#/components/schemas/BankCodeEnum"})
class BankCodeField(serializers.CharField):
    """A bank's code, documented as the shared BankCodeEnum: for the layers below banking,
    which cannot name banking.models.BankCode (audit)."""


def vocabulary_postprocess(result, generator, request, public):
    """Money patterns exact, bank_code parameters as the BankCode enum."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, component in schemas.items():
        if name.endswith("Request"):
            continue  # inputs accept what DRF parses ("12.5"); outputs are quantized
        _money_exact(component)
    schemas.setdefault(
        "BankCodeEnum",
        {"enum": list(settings.BANK_CODES), "type": "string", "description": "A bank's code."},
    )
    for item in result.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("name") == "bank_code" and "enum" not in parameter["schema"]:
                    parameter["schema"] = {"$ref": "#/components/schemas/BankCodeEnum"}
    return result


def _money_exact(node) -> None:
    if isinstance(node, dict):
        pattern = node.get("pattern")
        match = _UP_TO_TWO_PLACES.match(pattern) if isinstance(pattern, str) else None
        if node.get("format") == "decimal" and match:
            node["pattern"] = rf"^-?\d{{1,{match.group(1)}}}\.\d{{2}}$"
        for value in node.values():
            _money_exact(value)
    elif isinstance(node, list):
        for value in node:
            _money_exact(value)
