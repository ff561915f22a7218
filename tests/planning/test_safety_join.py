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


def test_protocol_without_rules_is_refused_not_given_another_protocols_rules(tmp_path: Path) -> None:
    """A site's own protocol with no pre-cycle rule file: the plan with laboratory values is refused with
    a message naming the fix (the PSMA rules used to be applied to any protocol not named psma/dotatate)."""
    from theradose.planning.protocols import PROTOCOL_DIR

    own = (PROTOCOL_DIR / "dotatate.toml").read_text(encoding="utf-8")
    own = own.replace('name = "dotatate"', 'name = "site_dotatoc"').replace(
        'precycle_rules = "precycle_dotatate.toml"\n', ""
    )
    (tmp_path / "site_dotatoc.toml").write_text(own, encoding="utf-8")
    text = (EXAMPLES / "PLAN_with_labs.toml").read_text()
    text = text.replace('protocol = "dotatate"', 'protocol = "site_dotatoc.toml"')
    text = text.replace("cycle1/doses.json", str(EXAMPLES / "cycle1" / "doses.json"))
    text = text.replace('labs = "labs.csv"', f'labs = "{EXAMPLES / "labs.csv"}"')
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(text)
    plan = load_plan(plan_file)
    assert plan.protocol.name == "site_dotatoc" and plan.protocol.precycle_rules is None
    with pytest.raises(InputError, match=r"protocol 'site_dotatoc' names no pre-cycle rule file"):
        plan_next_cycle(plan)


def test_unknown_protocol_name_in_a_plan_is_refused(tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text('protocol = "dotatoc"\n')
    with pytest.raises(InputError, match=r"'dotatoc' is neither a shipped protocol \(dotatate, psma\)"):
        load_plan(plan_file)
