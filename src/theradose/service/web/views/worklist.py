"""The worklist of a day (in the site's time zone): directives to sign and dispense, the day's doses
with what is in each syringe (product, lot), and pre-cycle DELAY/STOP decisions."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from theradose.pharmacy.ranges import EARLIEST_TIME, LATEST_TIME
from theradose.service.auth import Principal
from theradose.service.operations import patients, worklist
from theradose.service.web.views import base


def _rows(session: Session, me: Principal, start: datetime, end: datetime, day: date) -> dict[str, Any]:
    rows = worklist.day_worklist(session, me, start=start, end=end, day=day)
    names = patients.identities(session, me, [r["patient"] for r in rows], view="worklist")
    return {"rows": rows, "names": names}


def worklist_page(request: Request, day: str | None = None) -> Response:
    """``GET /ui/worklist?day=YYYY-MM-DD``."""
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
    with request.app.state.db.write() as session:
        ctx = _rows(session, me, start, end, the_day)
        session.expunge_all()
    return base.render(request, "worklist.html", me, day=the_day, **ctx)
