"""Serializers of the accounts API."""

from rest_framework import serializers

from banking.models import Account, AccountSummary, BalanceSnapshot
from banking.serializers.common import bank_code_field


class AccountOutputSerializer(serializers.ModelSerializer):
    bank_code = bank_code_field()
    account_type = serializers.CharField()
    subtype = serializers.CharField(source="bank_subtype")
    balance = serializers.DecimalField(
        source="current_balance", max_digits=18, decimal_places=2, allow_null=True
    )
    is_spendable = serializers.BooleanField()
    is_debt = serializers.BooleanField()

    class Meta:
        model = Account
        fields = [
            "id",
            "bank_code",
            "bank_account_id",
            "account_type",
            "subtype",
            "masked_number",
            "currency",
            "nickname",
            "opening_date",
            "is_active",
            "is_spendable",
            "is_debt",
            "balance",
            "balance_as_of",
        ]


class AccountTotalsOutputSerializer(serializers.ModelSerializer):
    spendable_total = serializers.DecimalField(max_digits=18, decimal_places=2)
    savings_total = serializers.DecimalField(max_digits=18, decimal_places=2)
    debt_total = serializers.DecimalField(max_digits=18, decimal_places=2)

    class Meta:
        model = AccountSummary
        fields = [
            "currency",
            "spendable_total",
            "savings_total",
            "debt_total",
            "accounts_count",
            "updated_at",
        ]


class AccountListOutputSerializer(serializers.Serializer):
    accounts = AccountOutputSerializer(many=True)
    totals = AccountTotalsOutputSerializer(many=True)


class BalanceSnapshotOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = BalanceSnapshot
        fields = ["as_of", "available", "booked", "currency"]


class AccountDetailOutputSerializer(AccountOutputSerializer):
    balance_history = BalanceSnapshotOutputSerializer(many=True)

    class Meta(AccountOutputSerializer.Meta):
        fields = [*AccountOutputSerializer.Meta.fields, "balance_history"]
