"""Path and query parameter types of the JSON API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Path, Query

from theradose.service.operations.common import PSEUDONYM_PATTERN

IdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]
PseudonymPath = Annotated[str, Path(pattern=PSEUDONYM_PATTERN)]
CameraPath = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
#: ``Idempotency-Key`` request header: a repeat of the same write with the same key writes nothing again.
IdempotencyKeyHeader = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)]
