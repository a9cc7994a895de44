"""Template filters of the admin console: times as the admin shows them everywhere."""

from django import template

from fintrack.core.admin import admin_datetime

register = template.Library()


@register.filter
def admin_time(value) -> str:
    """An instant in the admin's zone with seconds and zone: "2026-12-01 12:40:05 MSK"."""
    return admin_datetime(value)
