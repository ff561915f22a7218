"""Small validators shared by the pharmacy domain (messages name the field, the value and the fix)."""

from __future__ import annotations

import math
from datetime import datetime

from theradose.errors import InputError
from theradose.pharmacy.ranges import MAX_ACTIVITY_MBQ, MIN_ACTIVITY_MBQ


def require_aware(value: datetime, name: str) -> datetime:
    """Return ``value`` if it is a timezone-aware datetime, else raise :class:`InputError`."""
    if not isinstance(value, datetime):
        raise InputError(f"{name} must be a datetime; got {value!r}: pass an ISO 8601 date-time")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(
            f"{name} must be timezone-aware; got {value.isoformat()}: add a UTC offset, e.g. +00:00"
        )
    return value


def require_positive(value: float, name: str) -> float:
    """Return ``value`` as float if finite and > 0, else raise :class:`InputError`."""
    number = float(value)
    if not math.isfinite(number) or number <= 0.0:
        raise InputError(f"{name} must be a finite number > 0; got {value!r}: give a positive value")
    return number


def require_non_negative(value: float, name: str) -> float:
    """Return ``value`` as float if finite and >= 0, else raise :class:`InputError`."""
    number = float(value)
    if not math.isfinite(number) or number < 0.0:
        raise InputError(f"{name} must be a finite number >= 0; got {value!r}: give a non-negative value")
    return number


def require_text(value: str, name: str) -> str:
    """Return ``value`` stripped if it is a non-empty string, else raise :class:`InputError`."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{name} must be a non-empty text; got {value!r}: fill in {name}")
    return value.strip()


def require_fraction(value: float, name: str) -> float:
    """Return ``value`` if it is a finite fraction in (0, 1], else raise :class:`InputError`."""
    number = float(value)
    if not math.isfinite(number) or not 0.0 < number <= 1.0:
        raise InputError(f"{name} must be a fraction in (0, 1]; got {value!r}: e.g. 0.1 for 10 %")
    return number


def require_activity(value: float, name: str) -> float:
    """Return ``value`` as float if it is an activity in [1 kBq, 1 TBq] (in MBq), else raise."""
    number = require_positive(value, name)
    if not MIN_ACTIVITY_MBQ <= number <= MAX_ACTIVITY_MBQ:
        raise InputError(
            f"{name} must lie between {MIN_ACTIVITY_MBQ:g} MBq (1 kBq) and {MAX_ACTIVITY_MBQ:g} MBq (1 TBq); "
            f"got {value!r}: check the unit (MBq)"
        )
    return number
