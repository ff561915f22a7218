"""The laboratory pre-cycle check (theradose.safety) joins the next-cycle recommendation."""

from pathlib import Path

import pytest

from theradose.errors import InputError
from theradose.planning import load_plan, plan_next_cycle

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "planning"


def test_grade_2_thrombocytopenia_caps_dotatate_activity() -> None:
    """Platelets 71 × 10^9/L (CTCAE grade 2) before a Lutathera cycle: withhold, then 3.7 GBq
    (Lutathera USPI 2018, Table 2) although the dosimetry alone allows the protocol maximum."""
    result = plan_next_cycle(load_plan(EXAMPLES / "PLAN_with_labs.toml"))
    assert not result.stop
    assert result.recommended_activity_mbq == pytest.approx(3700.0)
    assert result.safety is not None and result.safety["decision"] == "delay"
    assert any(r.startswith("pre-cycle check (delay): platelets 71") for r in result.reasons)
    # projections follow the capped activity: half the kidney dose of the uncapped plan
    uncapped = plan_next_cycle(load_plan(EXAMPLES / "PLAN.toml"))
    kid = next(o for o in result.organs if o.organ == "kidneys")
    kid0 = next(o for o in uncapped.organs if o.organ == "kidneys")
    assert kid.projected_dose_gy - kid.delivered_dose_gy == pytest.approx(
        0.5 * (kid0.projected_dose_gy - kid0.delivered_dose_gy), rel=1e-9
    )


def test_recurrence_after_reduction_stops_treatment(tmp_path: Path) -> None:
    text = (
        (EXAMPLES / "PLAN_with_labs.toml")
        .read_text()
        .replace("cycle1/doses.json", str(EXAMPLES / "cycle1" / "doses.json"))
    )
    text = text.replace(
        'labs = "labs.csv"',
        f'labs = "{EXAMPLES / "labs.csv"}"\npreviously_reduced_for = ["thrombocytopenia_grade_2"]',
    )
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(text)
    result = plan_next_cycle(load_plan(plan_file))
    assert result.stop and result.recommended_activity_mbq == 0.0
    assert all(r.startswith("pre-cycle") for r in result.reasons)


def test_bad_safety_table_is_rejected(tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text('protocol = "psma"\n[safety]\nlab = "labs.csv"\n')
    with pytest.raises(InputError, match="lab is not a safety key"):
        load_plan(plan_file)
