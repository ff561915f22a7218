"""One write per request: an ``Idempotency-Key`` (API) or a form token (pages) makes a repeat harmless.

The first request under a key does its work and stores its answer in the same transaction; a repeat
(the back button and resubmit, a retried network call, a double click) gets the stored answer and
writes nothing. The same key with a different request, another user or another operation is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from theradose.service.auth import Principal
from theradose.service.errors import ApiError
from theradose.service.models import IdempotencyKey
from theradose.service.operations.common import utcnow

T = TypeVar("T", bound=BaseModel)
#: Largest accepted key (characters).
MAX_KEY_LENGTH = 200


def request_hash(operation: str, *parts: object) -> str:
    """SHA-256 of the operation and its input (models as canonical JSON)."""
    items = [p.model_dump(mode="json") if isinstance(p, BaseModel) else p for p in parts]
    text = json.dumps([operation, items], sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run_once(
    session: Session,
    me: Principal,
    key: str | None,
    operation: str,
    digest: str,
    out_type: type[T],
    work: Callable[[], T],
) -> tuple[T, bool]:
    """``(work(), False)`` the first time ``key`` is seen, ``(stored answer, True)`` on a repeat.

    ``key`` None runs ``work`` without protection. Runs in the caller's write transaction.
    """
    if key is None:
        return work(), False
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ApiError(
            422, "validation_error", f"Idempotency-Key: 1 to {MAX_KEY_LENGTH} printable characters"
        )
    row = session.execute(select(IdempotencyKey).where(IdempotencyKey.key == key)).scalar_one_or_none()
    if row is not None:
        if row.user_id != me.user_id or row.operation != operation or row.request_hash != digest:
            raise ApiError(
                409, "idempotency_key_reused", "Idempotency-Key was used for another request: use a new key"
            )
        return out_type.model_validate_json(row.response_json), True
    result = work()
    session.add(
        IdempotencyKey(
            key=key,
            user_id=me.user_id,
            operation=operation,
            request_hash=digest,
            response_json=result.model_dump_json(),
            created_at=utcnow(),
        )
    )
    session.flush()
    return result, False
