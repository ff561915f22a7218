"""Shared fixtures. Randomness is seeded; nothing is written outside tmp_path.

Time: tests never type in a calendar date that code compares with the clock. They compute such times
from the real "now" (the ``now`` fixture and the helpers in ``tests/clock.py``: ``hours_from_now``,
``days_from_now``, ``iso``); the service reads the real clock. ``tests/test_calendar.py`` enforces it, and
the suite passes under ``faketime '2031-06-15 12:00:00' make test``.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from clock import now_utc


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator, the same in every test run."""
    return np.random.default_rng(20261122)


@pytest.fixture
def now() -> datetime:
    """The current time in UTC (whole seconds), read once per test: every time a test sends to code that
    compares it with the clock is computed from it (see ``tests/clock.py``)."""
    return now_utc()
