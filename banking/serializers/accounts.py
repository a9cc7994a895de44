"""Serializers of the accounts API."""

from rest_framework import serializers

from banking.models import Account, AccountSummary, BalanceSnapshot


class AccountOutputSerializer(serializers.ModelSerializer):
    bank = serializers.CharField(source="bank_code")
    type = serializers.CharField(source="account_type")
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
            "bank",
            "bank_account_id",
            "type",
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
    spendable = serializers.DecimalField(source="spendable_total", max_digits=18, decimal_places=2)
    savings = serializers.DecimalField(source="savings_total", max_digits=18, decimal_places=2)
    debt = serializers.DecimalField(source="debt_total", max_digits=18, decimal_places=2)

    class Meta:
        model = AccountSummary
        fields = ["currency", "spendable", "savings", "debt", "accounts_count", "updated_at"]


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
