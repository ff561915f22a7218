"""Shared fixtures. Randomness is seeded; nothing is written outside tmp_path."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator, the same in every test run."""
    return np.random.default_rng(20261122)
