"""Shapes shared by the banking APIs' schemas."""

from rest_framework import serializers

from banking.models import BankCode

MAX_ID = 2**63 - 1
# The banks' catalogues quote amounts without a currency: they are roubles (SPEC §16).
CATALOGUE_CURRENCY = "RUB"


def bank_code_field(**kwargs) -> serializers.ChoiceField:
    """A bank's code, named `bank_code` on every endpoint (BankCodeEnum in the schema)."""
    return serializers.ChoiceField(choices=BankCode.choices, **kwargs)


class ErrorOutputSerializer(serializers.Serializer):
    """The one error shape of every API error."""

    code = serializers.CharField()
    message = serializers.CharField()
    extra = serializers.DictField()
