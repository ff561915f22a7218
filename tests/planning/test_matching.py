"""Which dose regions stand for a protocol organ: exact name, alias, then left/right aggregate."""

from __future__ import annotations

import pytest

from theradose.planning import Cycle, RegionDose, TreatmentPlan, load_protocol, plan_next_cycle
from theradose.planning.nextcycle import match_organ


def _organ(name: str):
    return next(o for o in load_protocol("psma").organs if o.name == name)


def test_exact_region_wins_over_an_earlier_side_region() -> None:
    cycle = Cycle(
        7400.0,
        (
            RegionDose("parotid_left", 0.9, 0.1, mass_g=25.0),
            RegionDose("Salivary Glands", 0.5, 0.05),
        ),
    )
    match = match_organ(cycle, _organ("salivary_glands"))
    assert match is not None
    assert match.rule == "exact"
    assert match.regions == ("Salivary Glands",)
    assert match.dose.dose_gy_per_gbq == 0.5


def test_alias_used_when_no_exact_region_and_tumours_never_match() -> None:
    cycle = Cycle(
        7400.0,
        (
            RegionDose("kidney", 0.6, 0.06, kind="tumour"),
            RegionDose("kidneys_total", 0.7, 0.07),
        ),
    )
    match = match_organ(cycle, _organ("kidneys"))
    assert match is not None and match.rule == "alias" and match.regions == ("kidneys_total",)


def test_left_and_right_kidneys_give_the_mass_weighted_mean() -> None:
    """Hand calculation: (150 g × 2.0 + 50 g × 1.0)/200 g = 1.75 Gy/GBq; σ = 0.75·0.2 + 0.25·0.1 =
    0.175 Gy/GBq (fully correlated); T_eff = (0.75·2.0·40 + 0.25·1.0·60)/1.75 = 42.857 h."""
    cycle = Cycle(
        7400.0,
        (
            RegionDose("kidney_left", 2.0, 0.2, 40.0, mass_g=150.0),
            RegionDose("right_kidney", 1.0, 0.1, 60.0, mass_g=50.0),
            RegionDose("liver", 0.1, 0.01, 50.0),
        ),
    )
    match = match_organ(cycle, _organ("kidneys"))
    assert match is not None and match.rule == "parts"
    assert match.regions == ("kidney_left", "right_kidney")
    assert match.dose.dose_gy_per_gbq == pytest.approx(1.75)
    assert match.dose.dose_sigma_gy_per_gbq == pytest.approx(0.175)
    assert match.dose.effective_half_life_h == pytest.approx(42.857142857, rel=1e-9)
    assert match.dose.mass_g == 200.0


def test_sides_without_mass_get_equal_weights_and_the_plan_says_so() -> None:
    """Equal weights: (0.8 + 0.4)/2 = 0.6 Gy/GBq → salivary dose after 7.4 GBq = 4.44 Gy."""
    cycle = Cycle(
        7400.0,
        (
            RegionDose("parotid_l", 0.8, 0.08),
            RegionDose("parotid_r", 0.4, 0.04),
            RegionDose("kidneys", 0.5, 0.05, 40.0),
        ),
    )
    plan = TreatmentPlan(protocol=load_protocol("psma"), cycles=(cycle,))
    result = plan_next_cycle(plan)
    salivary = next(o for o in result.organs if o.organ == "salivary_glands")
    assert salivary.delivered_dose_gy == pytest.approx(4.44)
    assert salivary.regions_used == (("parotid_l", "parotid_r"),)
    kidneys = next(o for o in result.organs if o.organ == "kidneys")
    assert kidneys.regions_used == (("kidneys",),)
    assert any("salivary_glands" in n and "equal weights" in n for n in result.notes)
    assert result.as_dict()["projected"]["salivary_glands"]["regions_used"] == [["parotid_l", "parotid_r"]]


def test_unrelated_side_regions_do_not_match() -> None:
    cycle = Cycle(7400.0, (RegionDose("lacrimal_left", 0.3, 0.03), RegionDose("lung_right", 0.1, 0.01)))
    assert match_organ(cycle, _organ("salivary_glands")) is None
    assert match_organ(cycle, _organ("kidneys")) is None


def test_parts_follow_the_organ_registry_and_use_the_outermost_part() -> None:
    """The submandibular glands are part of the salivary glands in the organ registry; of nested parts
    (``parotids`` contains ``parotid_left``) the outermost is used, so nothing counts twice:
    (30 g × 0.5 + 10 g × 0.3)/40 g = 0.45 Gy/GBq."""
    cycle = Cycle(
        7400.0,
        (
            RegionDose("parotid_left", 0.9, 0.09, mass_g=15.0),
            RegionDose("parotids", 0.5, 0.05, mass_g=30.0),
            RegionDose("submandibular_left", 0.3, 0.03, mass_g=10.0),
        ),
    )
    match = match_organ(cycle, _organ("salivary_glands"))
    assert match is not None and match.rule == "parts"
    assert match.regions == ("parotids", "submandibular_left")
    assert match.dose.dose_gy_per_gbq == pytest.approx(0.45)
