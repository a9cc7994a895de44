"""A user's local time: the zone, today, and the local calendar day of an instant.

Bank timestamps are UTC; users live in their own zone (default Europe/Moscow, settable in the
profile as `User.time_zone`, an IANA name). Every day and month FinTrack shows is a local one.
This module imports nothing of FinTrack's apps, so analytics, banking and users can all use it.
"""

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone

DEFAULT_TIME_ZONE = "Europe/Moscow"


def is_valid_zone(name: str) -> bool:
    """True for an IANA zone name zoneinfo knows (e.g. "Asia/Novosibirsk", "UTC")."""
    if not isinstance(name, str) or not name or name != name.strip() or len(name) > 64:
        return False
    # zoneinfo keeps the zones it loaded: no walk of the whole tz database (available_timezones,
    # 10 ms) for a name checked on every sync.
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@lru_cache(maxsize=64)
def zone_of(name: str | None) -> ZoneInfo:
    """The ZoneInfo of `name`; empty or unknown names fall back to DEFAULT_TIME_ZONE."""
    if name and is_valid_zone(name):
        return ZoneInfo(name)
    return ZoneInfo(DEFAULT_TIME_ZONE)


def user_zone_name(user) -> str:
    """The user's zone name (`user.time_zone`), or the default when unset."""
    name = getattr(user, "time_zone", "") or DEFAULT_TIME_ZONE
    return name if is_valid_zone(name) else DEFAULT_TIME_ZONE


def user_zone(user) -> ZoneInfo:
    """The user's ZoneInfo."""
    return zone_of(user_zone_name(user))


def _as_zone(user_or_zone) -> ZoneInfo:
    if isinstance(user_or_zone, ZoneInfo):
        return user_or_zone
    if isinstance(user_or_zone, str) or user_or_zone is None:
        return zone_of(user_or_zone)
    return user_zone(user_or_zone)


def local_date(user_or_zone, moment: datetime) -> date:
    """The local calendar day of an aware instant, for a user, a ZoneInfo or a zone name."""
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(_as_zone(user_or_zone)).date()


def user_today(user_or_zone, now: datetime | None = None) -> date:
    """Today in the user's zone."""
    return local_date(user_or_zone, now or timezone.now())


def local_day_start(user_or_zone, day: date) -> datetime:
    """The aware instant the local day `day` begins (right across DST changes)."""
    zone = _as_zone(user_or_zone)
    # A zone may skip midnight (DST at 00:00): the first existing instant is fold-resolved by
    # zoneinfo; normalising through UTC gives a real instant.
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def local_day_range(user_or_zone, date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """[start, end) instants covering local days date_from … date_to inclusive."""
    return (
        local_day_start(user_or_zone, date_from),
        local_day_start(user_or_zone, date_to + timedelta(days=1)),
    )
