"""JSON-safe copies of computed values: JSON has no infinity or NaN."""

from __future__ import annotations

import math
from typing import Any


def finite_or_null(value: Any) -> Any:
    """A copy of ``value`` (nested dicts, lists and tuples) with every non-finite float replaced by
    ``None`` (``null`` in JSON), dict keys as strings and tuples as lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    return value
