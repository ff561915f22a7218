"""JSON-safe copies: non-finite floats become null, nothing else changes."""

from __future__ import annotations

import json
import math

from theradose.jsonsafe import finite_or_null


def test_non_finite_floats_become_null_at_any_depth() -> None:
    value = {"a": [1.5, math.inf, (math.nan, 2)], 3: {"b": -math.inf, "c": "text"}, "d": None}
    out = finite_or_null(value)
    assert out == {"a": [1.5, None, [None, 2]], "3": {"b": None, "c": "text"}, "d": None}
    json.dumps(out, allow_nan=False)  # strict JSON
