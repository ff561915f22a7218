"""Small CSV tables typed in or exported by users: read with named, typed columns and clear errors."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from theradose.errors import InputError


def parse_float(text: str) -> float:
    """A finite float."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


def parse_aware_datetime(text: str) -> datetime:
    """An ISO 8601 datetime with a UTC offset (``2026-03-01T08:00:00+01:00``)."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        raise ValueError("no UTC offset: add one, e.g. +01:00 or Z")
    return value


def read_rows(
    path: str | Path,
    *,
    required: dict[str, Callable[[str], Any]],
    optional: dict[str, Callable[[str], Any]] | None = None,
) -> list[dict[str, Any]]:
    """Read a CSV file with a header row into typed dictionaries.

    Empty optional cells become ``None``. Any problem raises :class:`InputError` naming the file, the
    row (1 = first data row), the column and the value.
    """
    optional = optional or {}
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read {file} ({exc.strerror}): check the path") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in required if c not in header]
    if missing:
        found = ", ".join(header) or "nothing"
        raise InputError(f"{file.name}: missing column(s) {', '.join(missing)}; the header has {found}")
    rows: list[dict[str, Any]] = []
    for number, raw in enumerate(reader, start=1):
        clean = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        row: dict[str, Any] = {}
        for column, parse in [*required.items(), *optional.items()]:
            cell = clean.get(column, "")
            if cell == "":
                if column in required:
                    raise InputError(f"{file.name} row {number}: column {column} is empty: fill it in")
                row[column] = None
                continue
            try:
                row[column] = parse(cell)
            except ValueError as exc:
                raise InputError(
                    f"{file.name} row {number}: {column}={cell!r} is not valid ({exc})"
                ) from None
        rows.append(row)
    if not rows:
        raise InputError(f"{file.name} has no data rows")
    return rows


def column(rows: Sequence[dict[str, Any]], name: str) -> list[Any]:
    """The values of one column."""
    return [row[name] for row in rows]
