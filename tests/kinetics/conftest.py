"""Fixtures for the kinetics tests: reference curves with known parameters."""

from __future__ import annotations

import numpy as np
import pytest

#: Lu-177 physical decay constant, 1/h (half-life 6.647 d = 159.528 h, ICRP-107), used as a bound.
LU177_DECAY_CONSTANT_PER_H = np.log(2.0) / 159.528


@pytest.fixture
def lu177_decay_constant_per_h() -> float:
    return float(LU177_DECAY_CONSTANT_PER_H)


@pytest.fixture
def organ_times_h() -> np.ndarray:
    """Six imaging times typical of 177Lu dosimetry protocols, h."""
    return np.array([1.0, 4.0, 24.0, 48.0, 96.0, 168.0])
