"""The worklist of a day (in the site's time zone)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from fastapi import Request
from fastapi.responses import Response

from theradose.pharmacy.ranges import EARLIEST_TIME, LATEST_TIME
from theradose.service.operations import worklist
from theradose.service.web.views import base


def worklist_page(request: Request, day: str | None = None) -> Response:
    """``GET /ui/worklist?day=YYYY-MM-DD``: written directives to dispense and the day's doses."""
    me = base.require_user(request, "prescriptions:read")
    tz = base.site_tz(request)
    try:
        the_day = date.fromisoformat(day) if day else datetime.now(tz).date()
    except ValueError:
        the_day = datetime.now(tz).date()
    if not EARLIEST_TIME.year <= the_day.year < LATEST_TIME.year - 1:
        the_day = datetime.now(tz).date()  # like an unreadable day: 9999-12-31 has no next day
    start = datetime.combine(the_day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(the_day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    rows = base.read(request, worklist.day_worklist, me, start=start, end=end)
    return base.render(request, "worklist.html", me, rows=rows, day=the_day)
