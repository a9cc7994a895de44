"""Serializers of the products API."""

from rest_framework import serializers

from banking.models import BankCode, BankProduct, ProductAgreement

PRODUCT_TYPES = ["deposit", "loan", "card", "credit_card", "account"]


class ProductListParamsSerializer(serializers.Serializer):
    bank = serializers.ChoiceField(choices=BankCode.choices, required=False)
    product_type = serializers.ChoiceField(choices=PRODUCT_TYPES, required=False)


class BankProductOutputSerializer(serializers.ModelSerializer):
    bank = serializers.CharField(source="bank_code")

    class Meta:
        model = BankProduct
        fields = [
            "id",
            "bank",
            "product_id",
            "product_type",
            "name",
            "description",
            "interest_rate",
            "min_amount",
            "max_amount",
            "term_months",
            "fetched_at",
        ]


class AgreementOutputSerializer(serializers.ModelSerializer):
    bank = serializers.CharField(source="bank_code")
    linked_account_id = serializers.IntegerField(allow_null=True)

    class Meta:
        model = ProductAgreement
        fields = [
            "id",
            "bank",
            "agreement_id",
            "product_id",
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


class ProductListOutputSerializer(serializers.Serializer):
    catalogue = BankProductOutputSerializer(many=True)
    agreements = AgreementOutputSerializer(many=True)
