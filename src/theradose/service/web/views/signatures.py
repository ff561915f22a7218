"""E-signature dialogs: one form posts here for every signable record (and dosimetry reviews)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from theradose.service.auth import Principal, client_address
from theradose.service.errors import ApiError
from theradose.service.operations import dosimetry, signatures
from theradose.service.web.views import base


def _sign_review(request: Request, me: Principal, review_id: str, meaning: str, password: Any) -> str:
    state = request.app.state
    try:
        with state.db.read() as session:
            signer = dosimetry.reauthenticate_for_review(
                session,
                me,
                review_id,
                meaning,
                password,
                store=base.state(request).store,
                auth=state.auth,
                client=client_address(request),
                keys=state.keys,
            )
        base.write(request, dosimetry.sign_review, signer, keys=state.keys)
    except ApiError as exc:
        return exc.message
    return ""


def _sign_record(request: Request, me: Principal, body: signatures.SignIn) -> signatures.SignatureOut:
    state = request.app.state
    signer = signatures.reauthenticate(
        me, body.meaning, body.password, auth=state.auth, client=client_address(request)
    )
    return base.write(request, signatures.sign_record, signer, body, keys=state.keys)


async def sign(request: Request) -> Response:
    """``POST /ui/sign``: sign a record with the meaning of the dialog, after re-entering the password."""
    me = base.require_user(request, "sign")
    form = await base.checked_form(request, me)
    back = base.safe_next(form.get("next"), "/ui/worklist")
    record_type, record_id = base.form_text(form, "record_type"), base.form_text(form, "record_id")
    meaning, password = base.form_text(form, "meaning"), form.get("password")
    key = re.sub(r"[^A-Za-z0-9_-]", "", f"{record_type}-{record_id}-{meaning}")[:120]
    failed = back + ("&" if "?" in back else "?") + "sign_failed=" + key
    if record_type == "dosimetry_review":
        message = await run_in_threadpool(_sign_review, request, me, record_id, meaning, password)
        if message:
            return base.redirect(failed, f"not signed: {message}", kind="error")
        return base.redirect(back, f"signed as {meaning}")
    if not record_id.isdigit():
        return base.redirect(failed, "not signed: unknown record", kind="error")
    _, errors = await run_in_threadpool(
        base.run_form,
        lambda: signatures.SignIn.model_validate(
            {
                "record_type": record_type,
                "record_id": int(record_id),
                "meaning": meaning,
                "password": password if isinstance(password, str) else "",
            }
        ),
        lambda body: _sign_record(request, me, body),
    )
    if errors:
        return base.redirect(failed, "not signed: " + next(iter(errors.values())), kind="error")
    return base.redirect(back, f"signed as {meaning}")
