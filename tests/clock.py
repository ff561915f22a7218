"""The test suite's one source of "now".

The service compares times with the real clock: a batch is released only before its expiry, an injection
may not lie in the future, the worklist shows today. So every time a test hands to code that may compare
it with the clock is computed from :func:`now_utc` — never typed in as a calendar date — and the suite
passes on any date (``faketime '2031-06-15 12:00:00' make test``). The service itself reads the real
clock; tests do not inject one.

Dates that are only data (DICOM headers of synthetic files, laboratory tables compared with one another,
the decay arithmetic of a pure domain function given both ends of an interval) may stay literal;
``tests/test_calendar.py`` keeps literal dates out of the folders whose code reads the clock.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta


def now_utc() -> datetime:
    """The current time in UTC, truncated to whole seconds so that ISO strings round-trip exactly."""
    return datetime.now(UTC).replace(microsecond=0)


def hours_from_now(hours: float, *, now: datetime | None = None) -> datetime:
    """``now`` (default: :func:`now_utc`) plus ``hours`` (negative for the past)."""
    return (now or now_utc()) + timedelta(hours=hours)


def days_from_now(days: float, *, now: datetime | None = None) -> datetime:
    """``now`` (default: :func:`now_utc`) plus ``days`` (negative for the past)."""
    return hours_from_now(24.0 * days, now=now)


def days_ago(days: int) -> date:
    """The calendar date ``days`` days before today (UTC), for date-only fields such as lab dates."""
    return now_utc().date() - timedelta(days=days)


def iso(time: datetime) -> str:
    """``time`` as an ISO 8601 string in UTC with a ``Z`` suffix (microseconds kept when present)."""
    return time.astimezone(UTC).isoformat().replace("+00:00", "Z")


def real_clock_env() -> dict[str, str]:
    """This process's environment without libfaketime (``LD_PRELOAD`` and ``FAKETIME*``), for the helper
    programs the tests start that are not under test and misbehave on a faked clock: Orthanc's threads
    busy-wait, Chromium's page loads stall. The code under test (the service, the pipeline) keeps the
    faked clock; neither helper's clock decides anything a test checks."""
    return {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FAKETIME")}
