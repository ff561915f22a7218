"""Fixtures for planning tests.

``dale_bed_gy`` is an independent hand implementation of the BED of a single administration with
mono-exponential clearance and no uptake phase (Dale 1985, BJR 58:515, eq. for exponentially decaying
dose rate): BED = D [1 + D λ / ((μ + λ) α/β)], λ = ln2 / T_eff, μ = ln2 / T_rep. It lets the planning
logic be checked against hand calculations independently of the radiobiology package.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from theradose.planning import Cycle, RegionDose, TreatmentPlan, load_protocol


def dale_bed_gy(
    dose_gy: float, *, effective_half_life_h: float, alpha_beta_gy: float, repair_half_time_h: float
) -> float:
    lam = math.log(2) / effective_half_life_h
    mu = math.log(2) / repair_half_time_h
    return dose_gy * (1.0 + dose_gy * lam / ((mu + lam) * alpha_beta_gy))


@pytest.fixture
def bed() -> Callable[..., float]:
    return dale_bed_gy


def kidney_cycle(
    activity_mbq: float, gy_per_gbq: float, sigma: float, half_life_h: float = 50.0, **extra: RegionDose
) -> Cycle:
    regions = [RegionDose("kidneys", gy_per_gbq, sigma, half_life_h), *extra.values()]
    return Cycle(activity_mbq, tuple(regions))


@pytest.fixture
def dotatate_plan() -> Callable[..., TreatmentPlan]:
    def make(cycles: list[Cycle], **kwargs: object) -> TreatmentPlan:
        return TreatmentPlan(load_protocol("dotatate"), tuple(cycles), **kwargs)  # type: ignore[arg-type]

    return make
