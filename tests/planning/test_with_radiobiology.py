"""Planning with the real :func:`theradose.radiobiology.bed_gy` (no injected BED function)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from theradose.planning import load_protocol, plan_next_cycle
from theradose.radiobiology import tissue_parameters

from .conftest import kidney_cycle

ROOT = Path(__file__).resolve().parents[2]


def test_kidney_limited_with_radiobiology_package(dotatate_plan) -> None:
    # same hand calculation as test_nextcycle: BED-limited to 6.6575 GBq with a risk factor
    plan = dotatate_plan([kidney_cycle(7400, 1.5, 0.15)], risk_factors=("hypertension",))
    result = plan_next_cycle(plan)
    assert result.limiting_organ == "kidneys"
    assert result.recommended_activity_mbq == pytest.approx(6657.5, abs=0.5)
    assert result.organs[0].delivered_bed_gy == pytest.approx(13.6130, abs=1e-4)


def test_protocol_kidney_parameters_agree_with_radiobiology_table() -> None:
    kidney = tissue_parameters("kidney")
    for name in ("psma", "dotatate"):
        organ = load_protocol(name).organ("kidneys")
        assert organ.alpha_beta_gy is not None and organ.repair_half_time_h is not None
        assert organ.alpha_beta_gy.value == kidney.alpha_beta_gy
        assert organ.repair_half_time_h.value == kidney.repair_half_time_h


def test_cli_next_cycle_on_shipped_example() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "theradose",
            "plan",
            "next-cycle",
            str(ROOT / "examples/planning/PLAN.toml"),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    kidneys = data["projected"]["kidneys"]
    assert kidneys["limit_bed_gy"] == 28.0  # hypertension in the example → Bodei 2008 limit
    assert 0 < kidneys["cumulative_bed_gy"] < 28.0
    # delivered: 0.6 Gy/GBq × 7.4 GBq + 0.68 × 7.35 = 9.438 Gy; next 0.68 × 7.4 = 5.032 Gy
    assert kidneys["cumulative_dose_gy"] == pytest.approx(9.438 + 5.032)
    assert data["recommended_activity_mbq"] == 7400.0 and data["stop"] is False
    assert (
        data["tumour"]["liver_met_1"]["expected_bed_gy"] > data["tumour"]["liver_met_1"]["expected_dose_gy"]
    )
