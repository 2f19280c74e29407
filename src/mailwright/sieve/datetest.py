"""Date parts for the date and currentdate tests (RFC 5260 4.1-4.3)."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta, timezone

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def parse_date(value: str) -> datetime | None:
    """An RFC 5322 date-time with its own zone, or None when it cannot be read."""
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    try:
        offset = parsed[9] or 0
        stamp = datetime(*parsed[:6], tzinfo=timezone(timedelta(seconds=offset)))  # type: ignore[misc]
    except (ValueError, OverflowError):
        return None
    return stamp


def zone(spec: str) -> timezone:
    """`+hhmm` / `-hhmm` (RFC 5260 4.1 :zone)."""
    sign = -1 if spec[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(spec[1:3]), minutes=int(spec[3:5])))


def local_zone() -> timezone:
    offset = datetime.now().astimezone().utcoffset() or timedelta(0)
    return timezone(offset)


def _zone_text(dt: datetime) -> str:
    offset = dt.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}{minutes % 60:02d}"


def date_part(dt: datetime, part: str) -> str | None:
    part = part.lower()
    if part == "year":
        return f"{dt.year:04d}"
    if part == "month":
        return f"{dt.month:02d}"
    if part == "day":
        return f"{dt.day:02d}"
    if part == "date":
        return f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}"
    if part == "julian":
        # Modified Julian Day: days since 1858-11-17
        return str((dt.date() - datetime(1858, 11, 17, tzinfo=UTC).date()).days)
    if part == "hour":
        return f"{dt.hour:02d}"
    if part == "minute":
        return f"{dt.minute:02d}"
    if part == "second":
        return f"{dt.second:02d}"
    if part == "time":
        return f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
    if part == "iso8601":
        z = _zone_text(dt)
        # RFC 3339 5.6 time-offset; UTC is written "Z" (as Pigeonhole does)
        suffix = "Z" if z in ("+0000", "-0000") else f"{z[:3]}:{z[3:]}"
        return f"{dt:%Y-%m-%dT%H:%M:%S}{suffix}"
    if part == "std11":
        return (f"{_WEEKDAYS[dt.weekday()]}, {dt.day:02d} {_MONTHS[dt.month - 1]} {dt.year:04d}"
                f" {dt:%H:%M:%S} {_zone_text(dt)}")
    if part == "zone":
        return _zone_text(dt)
    if part == "weekday":
        return str((dt.weekday() + 1) % 7)  # 0 is Sunday
    return None
