"""Shared output helpers for CLI commands: JSON on stdout, human tables with rich."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(data: Any) -> str:
    """Serialise ``data`` (dicts, lists, numpy scalars/arrays) to indented JSON; NaN/inf become null."""
    return json.dumps(_jsonable(data), indent=2, sort_keys=False)


def print_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout, nothing else."""
    print(to_json(data))


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a human-readable table with rich."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title))
    for column in columns:
        table.add_column(escape(column))
    for row in rows:
        table.add_row(*(_fmt(v) for v in row))
    Console().print(table)


def print_mapping(title: str, data: Mapping[str, Any]) -> None:
    """Print key/value pairs as a two-column table."""
    print_table(title, ["quantity", "value"], [(k, v) for k, v in data.items()])


def _fmt(value: Any) -> str:
    from rich.markup import escape

    if isinstance(value, float):
        return f"{value:.6g}"
    return escape(str(value))
