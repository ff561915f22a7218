"""The cumulative-BED figure: one panel per organ with its limit line and the projection."""

from __future__ import annotations

import pytest

from theradose.planning import RegionDose, plan_next_cycle
from theradose.planning.plot import cumulative_bed_figure, organ_curves

from .conftest import kidney_cycle


def test_curves_and_figure(dotatate_plan, bed, tmp_path) -> None:
    marrow = RegionDose("red_marrow", 0.04, 0.01, 40.0)
    cycles = [kidney_cycle(7400, 0.5, 0.05, marrow=marrow), kidney_cycle(7400, 0.5, 0.05, marrow=marrow)]
    plan = dotatate_plan(cycles, risk_factors=("diabetes",))
    result = plan_next_cycle(plan, bed_function=bed)
    curves = {c.organ: c for c in organ_curves(plan, result, bed_function=bed)}
    kidneys = curves["kidneys"]
    # per cycle D = 3.7 Gy, BED = 3.7 (1 + 3.7 × 0.0203963) = 3.97923 Gy (T_eff 50 h, see test_nextcycle)
    assert kidneys.quantity == "BED" and kidneys.limit_gy == 28.0
    assert kidneys.cumulative_gy == pytest.approx((3.97923, 7.95846), abs=1e-4)
    assert kidneys.projected_gy == result.organs[0].projected_bed_gy
    assert curves["red_marrow"].quantity == "absorbed dose"
    assert curves["red_marrow"].cumulative_gy == pytest.approx((0.296, 0.592))
    fig = cumulative_bed_figure(plan, result, bed_function=bed)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["kidneys", "red marrow"]
    limit_lines = [line for line in visible[0].get_lines() if line.get_linestyle() == ":"]
    assert limit_lines and limit_lines[0].get_ydata()[0] == 28.0
    fig.savefig(tmp_path / "bed.png")
    assert (tmp_path / "bed.png").stat().st_size > 1000
