"""Filters of the staff raw-log API: each value validated, bad ones answered with a 400."""

import re
from datetime import UTC, date, datetime, timedelta

import django_filters
from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audit.models import RawApiLog

MAX_ID = 2**63 - 1
_STATUS_EXACT = re.compile(r"^[1-5][0-9]{2}$")
_STATUS_CLASS = re.compile(r"^[1-5]xx$")


class StatusField(forms.CharField):
    """An exact HTTP status (404), a class (4xx), or `none` (requests and failed exchanges)."""

    default_error_messages = {
        "invalid": "Use an HTTP status like 404, a class like 4xx, or none.",
    }

    def to_python(self, value):
        value = super().to_python(value).strip().lower()
        if value in self.empty_values:
            return None
        if value == "none" or _STATUS_EXACT.match(value) or _STATUS_CLASS.match(value):
            return value
        raise forms.ValidationError(self.error_messages["invalid"], code="invalid")


class MomentField(forms.Field):
    """A date (YYYY-MM-DD, a whole UTC day) or an ISO 8601 datetime (naive means UTC)."""

    default_error_messages = {
        "invalid": "Use a date (2025-11-01) or an ISO 8601 datetime (2025-11-01T10:00:00Z).",
    }

    def to_python(self, value):
        if value in self.empty_values:
            return None
        text = str(value).strip()
        try:
            moment = parse_datetime(text) if "T" in text or " " in text else parse_date(text)
        except ValueError:
            moment = None
        if moment is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        if isinstance(moment, datetime):
            if timezone.is_naive(moment):
                moment = moment.replace(tzinfo=UTC)
            try:
                # In UTC: the database holds no offset beyond ±15:59, Python no instant
                # before 0001-01-01 00:00 UTC.
                moment = moment.astimezone(UTC)
            except OverflowError:
                raise forms.ValidationError(
                    self.error_messages["invalid"], code="invalid"
                ) from None
        return moment


def cursor_position_clean(position: str) -> str:
    """A raw-log cursor's position (a created_at) in UTC, or ValueError: the database holds no
    offset beyond ±15:59 and Python no instant outside years 1-9999 (OverflowError)."""
    try:
        moment = parse_datetime(position)
        if moment is None or timezone.is_naive(moment):
            raise ValueError("not an aware datetime")
        return str(moment.astimezone(UTC))
    except OverflowError as exc:
        raise ValueError("cursor position out of range") from exc


class IdFilter(django_filters.Filter):
    field_class = forms.IntegerField


class StatusFilter(django_filters.Filter):
    field_class = StatusField

    def filter(self, queryset, value):
        if not value:
            return queryset
        if value == "none":
            return queryset.filter(status_code__isnull=True)
        if value.endswith("xx"):
            low = int(value[0]) * 100
            return queryset.filter(status_code__gte=low, status_code__lt=low + 100)
        return queryset.filter(status_code=int(value))


def _start_of(moment: date | datetime) -> datetime:
    if isinstance(moment, datetime):
        return moment
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def _end_of(moment: date | datetime) -> datetime | None:
    """The exclusive upper bound of `to`: the instant itself for a datetime, the next day's start
    for a date; None (no bound) for the calendar's last day."""
    if isinstance(moment, datetime):
        return moment
    if moment == date.max:
        return None
    return _start_of(moment) + timedelta(days=1)


class MomentFilter(django_filters.Filter):
    """`from` is inclusive; `to` is inclusive for a datetime and covers the whole day for a date."""

    field_class = MomentField

    def __init__(self, *args, upper: bool = False, **kwargs):
        self.upper = upper
        super().__init__(*args, **kwargs)

    def filter(self, queryset, value):
        if value is None:
            return queryset
        if not self.upper:
            return queryset.filter(created_at__gte=_start_of(value))
        if isinstance(value, datetime):
            return queryset.filter(created_at__lte=value)
        end = _end_of(value)
        return queryset if end is None else queryset.filter(created_at__lt=end)


class RawLogFilterForm(forms.Form):
    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("from"), cleaned.get("to")
        if start is not None and end is not None:
            end_bound = _end_of(end)
            if end_bound is not None and _start_of(start) > end_bound:
                self.add_error("to", "Must not be before `from`.")
        return cleaned


class RawLogFilter(django_filters.FilterSet):
    user_id = IdFilter(field_name="user_id", min_value=1, max_value=MAX_ID)
    bank_code = django_filters.ChoiceFilter(
        field_name="bank_code", choices=[(code, code) for code in settings.BANK_CODES]
    )
    correlation_id = django_filters.CharFilter(field_name="correlation_id", max_length=64)
    endpoint = django_filters.CharFilter(
        field_name="endpoint", lookup_expr="icontains", max_length=512
    )
    direction = django_filters.ChoiceFilter(
        field_name="direction", choices=RawApiLog._meta.get_field("direction").choices
    )
    status_code = StatusFilter()
    from_ = MomentFilter()
    to = MomentFilter(upper=True)

    class Meta:
        model = RawApiLog
        fields: list[str] = []
        form = RawLogFilterForm


# `from` is a Python keyword: the filter is declared as `from_` and served as `from`.
RawLogFilter.base_filters["from"] = RawLogFilter.base_filters.pop("from_")
