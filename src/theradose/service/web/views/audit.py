"""The audit log with chain verification."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from theradose.service.auth import Principal
from theradose.service.operations import audit
from theradose.service.web.views import base


def _page(request: Request, me: Principal, *, verification: Any = None) -> Response:
    entity = request.query_params.get("entity") or None
    if entity is not None and not re.match(r"^[a-z_]{1,40}$", entity):
        entity = None
    entries = base.read(request, audit.list_audit, me, entity=entity, limit=200)
    total = base.read(request, audit.count_audit, me)
    return base.render(
        request, "audit.html", me, entries=entries, entity=entity, verification=verification, total=total
    )


def audit_page(request: Request) -> Response:
    """``GET /ui/audit[?entity=NAME]``: the newest 200 entries."""
    me = base.require_user(request, "audit:read")
    return _page(request, me)


async def verify(request: Request) -> Response:
    """``POST /ui/audit/verify``: verify the whole chain."""
    me = base.require_user(request, "audit:read")
    await base.checked_form(request, me)
    verification = await run_in_threadpool(
        base.read, request, audit.verify_audit, me, keys=request.app.state.keys
    )
    return _page(request, me, verification=verification)
