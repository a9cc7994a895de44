"""Shapes shared by the banking APIs' schemas."""

from rest_framework import serializers

MAX_ID = 2**63 - 1


class ErrorOutputSerializer(serializers.Serializer):
    """The one error shape of every API error."""

    code = serializers.CharField()
    message = serializers.CharField()
    extra = serializers.DictField()
