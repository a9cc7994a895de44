"""Serializers of the products API."""

from rest_framework import serializers

from banking.models import BankCode, BankProduct, ProductAgreement
from banking.serializers.common import CATALOGUE_CURRENCY, bank_code_field

PRODUCT_TYPES = ["deposit", "loan", "card", "credit_card", "account"]


INTEREST_RATE_HELP = 'Percent a year, three decimals ("9.300"); null when the bank gives none.'


class ProductListParamsSerializer(serializers.Serializer):
    bank_code = serializers.ChoiceField(choices=BankCode.choices, required=False)
    product_type = serializers.ChoiceField(choices=PRODUCT_TYPES, required=False)


class BankProductOutputSerializer(serializers.ModelSerializer):
    bank_code = bank_code_field()
    bank_product_id = serializers.CharField(source="product_id")
    currency = serializers.SerializerMethodField(
        help_text="The currency of min_amount and max_amount (the catalogues quote roubles)."
    )

    class Meta:
        model = BankProduct
        fields = [
            "id",
            "bank_code",
            "bank_product_id",
            "product_type",
            "name",
            "description",
            "interest_rate",
            "min_amount",
            "max_amount",
            "currency",
            "term_months",
            "fetched_at",
        ]
        extra_kwargs = {"interest_rate": {"help_text": INTEREST_RATE_HELP}}

    def get_currency(self, product) -> str:
        return CATALOGUE_CURRENCY


class AgreementOutputSerializer(serializers.ModelSerializer):
    bank_code = bank_code_field()
    bank_agreement_id = serializers.CharField(source="agreement_id")
    bank_product_id = serializers.CharField(source="product_id")
    linked_account_id = serializers.IntegerField(allow_null=True)

    class Meta:
        model = ProductAgreement
        fields = [
            "id",
            "bank_code",
            "bank_agreement_id",
            "bank_product_id",
            "product_type",
            "product_name",
            "principal",
            "currency",
            "interest_rate",
            "term_months",
            "start_date",
            "end_date",
            "status",
            "linked_account_id",
            "remaining_balance",
            "monthly_payment",
            "next_payment_date",
            "next_payment_amount",
            "next_payment_source",
        ]
        extra_kwargs = {"interest_rate": {"help_text": INTEREST_RATE_HELP}}


class ProductListOutputSerializer(serializers.Serializer):
    catalogue = BankProductOutputSerializer(many=True)
    agreements = AgreementOutputSerializer(many=True)
