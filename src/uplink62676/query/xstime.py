"""``xs:duration`` and ``xs:dateTime`` for the event service (EVT-3, EVT-R2).

Times inside the library are float seconds since the Unix epoch (UTC), the
``now`` the caller passes in.  Durations with year or month parts are added
calendar-wise to a reference time (XML Schema Part 2, Appendix E), so their
length depends on when they are applied.
"""

from __future__ import annotations

import calendar
import datetime as _dt
import math
import re
from typing import Final

import attrs

from ..errors import LocalProtocolError

__all__ = ["Duration", "format_datetime", "parse_datetime", "parse_duration"]

_DURATION_RE: Final = re.compile(
    r"(-)?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?"
    r"(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d*)?|\.\d+)S)?)?"
)
_DATETIME_RE: Final = re.compile(
    r"(-?\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?"
)
_XML_WS: Final = " \t\r\n"
_MAX_YEARS: Final = 10_000


@attrs.frozen(slots=True)
class Duration:
    """A parsed ``xs:duration``; ``seconds`` holds days, hours, minutes and seconds."""

    negative: bool
    months: int
    seconds: float

    def length_from(self, start: float) -> float:
        """Signed length in seconds when applied at ``start`` (epoch seconds)."""
        if not self.months:
            return -self.seconds if self.negative else self.seconds
        sign = -1 if self.negative else 1
        base = _dt.datetime.fromtimestamp(start, _dt.UTC)
        total = base.year * 12 + (base.month - 1) + sign * self.months
        year, month = divmod(total, 12)
        if not 1 <= year <= 9999:
            return sign * math.inf
        day = min(base.day, calendar.monthrange(year, month + 1)[1])
        shifted = base.replace(year=year, month=month + 1, day=day)
        return (shifted.timestamp() - start) + sign * self.seconds

    @property
    def is_zero(self) -> bool:
        """True for a duration of no months and no seconds."""
        return self.months == 0 and self.seconds == 0


def parse_duration(text: str) -> Duration:
    """Parse an ``xs:duration`` (``PT5S``, ``-PT1M``, ``P1Y2M``, ``PT0.5S``).

    Raises :class:`LocalProtocolError` naming the text when it is not one.
    """
    s = text.strip(_XML_WS)
    m = _DURATION_RE.fullmatch(s)
    if m is None or s.endswith("T") or s in ("P", "-P") or all(g is None for g in m.groups()[1:]):
        raise LocalProtocolError(f"not an xs:duration: {text!r}")
    neg, y, mo, d, h, mi, sec = m.groups()
    years, months = int(y or 0), int(mo or 0)
    if years > _MAX_YEARS or months > _MAX_YEARS * 12 or len(d or "") > 9 or len(h or "") > 12:
        raise LocalProtocolError(f"xs:duration out of range: {text!r}")
    seconds = (int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60
               + float(sec or 0))
    if not math.isfinite(seconds):
        raise LocalProtocolError(f"xs:duration out of range: {text!r}")
    return Duration(bool(neg), years * 12 + months, seconds)


def parse_datetime(text: str) -> float:
    """Parse an ``xs:dateTime`` into epoch seconds; no zone means UTC (OQ-28)."""
    s = text.strip(_XML_WS)
    m = _DATETIME_RE.fullmatch(s)
    if m is None:
        raise LocalProtocolError(f"not an xs:dateTime: {text!r}")
    year, month, day, hour, minute, second, frac, zone = m.groups()
    try:
        if hour == "24" and minute == "00" and second == "00" and not (frac or "").strip(".0"):
            base = _dt.datetime(int(year), int(month), int(day), tzinfo=_dt.UTC)
            value = base.timestamp() + 86400
        else:
            value = _dt.datetime(
                int(year), int(month), int(day), int(hour), int(minute), int(second),
                tzinfo=_dt.UTC,
            ).timestamp() + (float(frac) if frac else 0.0)
    except (ValueError, OverflowError):
        raise LocalProtocolError(f"xs:dateTime out of range: {text!r}") from None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        zh, zm = int(zone[1:3]), int(zone[4:6])
        if zh > 14 or zm > 59:
            raise LocalProtocolError(f"bad zone in xs:dateTime: {text!r}")
        value -= sign * (zh * 3600 + zm * 60)
    return value


def format_datetime(epoch: float) -> str:
    """UTC ``xs:dateTime`` with ``Z`` (EVT-3); milliseconds only when non-zero."""
    whole = math.floor(epoch)
    ms = round((epoch - whole) * 1000)
    if ms == 1000:
        whole, ms = whole + 1, 0
    t = _dt.datetime.fromtimestamp(whole, _dt.UTC)
    head = (f"{t.year:04d}-{t.month:02d}-{t.day:02d}T"
            f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}")
    return f"{head}.{ms:03d}Z" if ms else f"{head}Z"


def format_duration(seconds: float) -> str:
    """``xs:duration`` for a length in seconds (``PT2M``, ``PT0.5S``)."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    whole = int(seconds)
    frac = seconds - whole
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    out = "PT"
    if h:
        out += f"{h}H"
    if m:
        out += f"{m}M"
    if s or frac or out == "PT":
        out += f"{s + frac:g}S" if frac else f"{s}S"
    return out
