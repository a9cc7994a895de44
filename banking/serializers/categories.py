"""Shapes of the category corrections API: a transaction's PATCH and the user's own rules."""

from rest_framework import serializers

from banking.models import CategoryMatch, CategorySource
from banking.serializers.transactions import CategoryOutputSerializer, TransactionOutputSerializer

NOTE_MAX_LENGTH = 1000


def _category_field(**kwargs) -> serializers.CharField:
    return serializers.CharField(
        max_length=32, help_text="A category code (see the category of any transaction).", **kwargs
    )


class TransactionPatchInputSerializer(serializers.Serializer):
    """Every field optional: an empty PATCH changes nothing and answers the transaction."""

    category_code = _category_field(required=False)
    note = serializers.CharField(
        required=False, allow_blank=True, max_length=NOTE_MAX_LENGTH, trim_whitespace=True
    )
    apply_to_similar = serializers.BooleanField(
        required=False,
        default=False,
        help_text=(
            "Also make a rule of your own from this transaction's merchant (the name without "
            "the city) or, without one, its description, and apply it to your other "
            "transactions now and at every sync."
        ),
    )


class CategoryRuleOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    match = serializers.ChoiceField(source="match_kind", choices=CategoryMatch.choices)
    pattern = serializers.CharField()
    pattern_folded = serializers.CharField(
        help_text="What is matched: lower case, ё as е, spaces collapsed."
    )
    category = CategoryOutputSerializer()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class TransactionCorrectedOutputSerializer(TransactionOutputSerializer):
    category_source = serializers.ChoiceField(
        choices=CategorySource.choices,
        help_text="bank_rule: FinTrack's rules; user: set by you (no sync changes it); "
        "user_rule: one of your rules.",
    )
    note = serializers.CharField()
    rule = CategoryRuleOutputSerializer(
        allow_null=True, help_text="The rule apply_to_similar made or updated; else null."
    )
    similar_updated = serializers.IntegerField(
        help_text="Your other transactions the rule re-categorised now."
    )

    class Meta(TransactionOutputSerializer.Meta):
        # dict.fromkeys: the parent may list category_source and note itself one day.
        fields = list(
            dict.fromkeys(
                [
                    *TransactionOutputSerializer.Meta.fields,
                    "category_source",
                    "note",
                    "rule",
                    "similar_updated",
                ]
            )
        )


class CategoryRuleInputSerializer(serializers.Serializer):
    match = serializers.ChoiceField(
        choices=CategoryMatch.choices,
        help_text="merchant: the merchant name without its city; description: the description.",
    )
    pattern = serializers.CharField(
        max_length=255,
        trim_whitespace=True,
        help_text="Text the merchant or description contains; any case, ё and е alike; "
        "at least 3 characters.",
    )
    category_code = _category_field()


class CategoryRulePatchInputSerializer(CategoryRuleInputSerializer):
    """The same fields, each optional: an empty PATCH changes nothing."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False


class CategoryRuleChangeOutputSerializer(CategoryRuleOutputSerializer):
    transactions_updated = serializers.IntegerField(
        help_text="Your past transactions this change re-categorised."
    )


class CategoryRuleListOutputSerializer(serializers.Serializer):
    results = CategoryRuleOutputSerializer(many=True)


class CategoryRuleDeletedOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    transactions_updated = serializers.IntegerField(
        help_text="Transactions the rule had decided, now decided by your other rules or ours."
    )
