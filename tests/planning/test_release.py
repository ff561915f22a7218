"""Patient release: NRC NUREG-1556 Vol. 9 Rev. 3 Appendix U reproduced, restrictions by hand.

Worked example reproduced: Appendix U Table U-1 (activities and dose rates for authorizing patient
release) for I-131 — Γ = 2.2 R·cm²/(mCi·h), physical half-life 8.04 d, occupancy 0.25 at 1 m:
release at or below 1.2 GBq (33 mCi), dose rate at 1 m 0.07 mSv/h (7 mrem/h); and Table U-2
(activities above which instructions are required): 0.24 GBq (7 mCi). The same numbers are in
Regulatory Guide 8.39 Table 1/Table 2 (summarised by Siegel et al., J Nucl Med Technol 2002; 33 mCi,
7 mCi, 7 mrem/h).
"""

from __future__ import annotations

import math

import pytest

from theradose.errors import InputError
from theradose.nuclides import air_kerma_rate_constant_ugy_m2_per_gbq_h
from theradose.planning.release import (
    ContactScenario,
    assess_release,
    dose_to_others_rem,
    exposure_rate_constant_r_cm2_per_mci_h,
    load_contact_scenarios,
    releasable_activity_mbq,
    restriction_days,
)

GAMMA_I131 = 2.2  # R·cm²/(mCi·h), Appendix U Table U-1
T_I131_D = 8.04  # d, Appendix U Table U-1


def test_table_u1_i131_release_activity() -> None:
    activity_mbq = releasable_activity_mbq(
        exposure_rate_constant_r_cm2_per_mci_h=GAMMA_I131, half_life_d=T_I131_D
    )
    # hand: Q0 = 0.5 rem × 100² cm² / (34.6 × 2.2 × 8.04 × 0.25) = 32.68 mCi = 1209 MBq
    assert activity_mbq == pytest.approx(32.68 * 37, rel=1e-3)
    assert round(activity_mbq / 1000, 1) == 1.2  # GBq, as tabulated
    assert round(activity_mbq / 37) == 33  # mCi, as tabulated
    # dose rate at 1 m at that activity: Γ Q0 / r² = 2.2 × 32.68 / 10⁴ R/h = 7.2 mrem/h
    # → tabulated "7 mrem/h, 0.07 mSv/h"
    rate_mrem_h = GAMMA_I131 * (activity_mbq / 37) / 100.0**2 * 1000
    assert round(rate_mrem_h) == 7


def test_table_u2_i131_instruction_activity() -> None:
    activity_mbq = releasable_activity_mbq(
        exposure_rate_constant_r_cm2_per_mci_h=GAMMA_I131, half_life_d=T_I131_D, dose_limit_msv=1.0
    )
    assert round(activity_mbq / 1000, 2) == 0.24  # GBq
    assert round(activity_mbq / 37) == 7  # mCi


def test_equation_u1_hand_calculation() -> None:
    # 34.6 × 2.2 = 76.12; × 33 = 2511.96; × 8.04 = 20196.16; × 0.25 / 100² = 0.504904 rem
    assert dose_to_others_rem(
        33.0, exposure_rate_constant_r_cm2_per_mci_h=2.2, half_life_d=8.04
    ) == pytest.approx(0.504904, abs=1e-6)


def test_air_kerma_constant_converts_to_nureg_gamma() -> None:
    # ICRP-107 photon lines + μen/ρ give Γ_δ; converted it must match Table U-1's 2.2 R·cm²/(mCi·h)
    gamma = exposure_rate_constant_r_cm2_per_mci_h(air_kerma_rate_constant_ugy_m2_per_gbq_h("I-131"))
    assert round(gamma, 1) == 2.2
    # unit conversion by hand: 1 µGy·m²/(GBq·h) = 10⁴ cm² × 0.037 GBq/mCi / 8764.26 µGy/R
    assert exposure_rate_constant_r_cm2_per_mci_h(1.0) == pytest.approx(370.0 / 8764.26, rel=1e-6)


def test_assess_release_i131_matches_threshold() -> None:
    assert assess_release("I-131", 1150.0).releasable
    over = assess_release("I-131", 1300.0)
    assert not over.releasable and over.instructions_required
    assert over.half_life_kind == "physical"


def test_measured_dose_rate_route_hand_calculation() -> None:
    # D = 34.6 × 0.002 rem/h × (60 h / 24) d × 0.25 = 0.04325 rem = 0.4325 mSv
    result = assess_release("Lu-177", 5000.0, dose_rate_usv_h_at_1m=20.0, effective_half_life_h=60.0)
    assert result.dose_to_others_msv == pytest.approx(0.4325, rel=1e-12)
    assert result.releasable and not result.instructions_required
    assert result.half_life_kind == "effective"


def test_lu177_standard_activity_needs_instructions() -> None:
    # Lu-177 Γ ≈ 0.18 R·cm²/(mCi·h): 7.4 GBq = 200 mCi, T = 6.647 d →
    # 34.6 × 0.18 × 200 × 6.647 × 0.25 / 10⁴ ≈ 0.207 rem ≈ 2.07 mSv: releasable, instructions required
    result = assess_release("Lu-177", 7400.0)
    assert result.releasable and result.instructions_required
    assert result.dose_to_others_msv == pytest.approx(2.07, rel=0.01)


def test_restriction_period_hand_calculation() -> None:
    child = ContactScenario("child", "young children", 0.5, 4.0, 1.0, "test")
    # D(0) = 20 µSv/h / 0.5² × 4/24 × 60/ln2 h = 1154.2 µSv; t = (60/ln2) ln(1.1542) h = 12.41 h = 0.517 d
    r = restriction_days(20.0, 60.0, child)
    assert r.dose_without_restriction_msv == pytest.approx(80 * (4 / 24) * 60 / math.log(2) / 1000, rel=1e-12)
    assert r.days == pytest.approx(60 / math.log(2) * math.log(1.1541560327111708) / 24, rel=1e-9)
    assert r.days == pytest.approx(0.517, abs=0.001)
    relaxed = restriction_days(2.0, 60.0, child)
    assert relaxed.days == 0.0 and "no restriction needed" in relaxed.as_sentence()


def test_shipped_scenarios() -> None:
    names = {s.name for s in load_contact_scenarios()}
    assert names == {"partner", "child", "work"}


def test_release_input_errors() -> None:
    with pytest.raises(InputError, match="occupancy_factor is required for Tc-99m"):
        assess_release("Tc-99m", 1000.0)
    with pytest.raises(InputError, match="effective_half_life_h must be in"):
        assess_release("Lu-177", 1000.0, effective_half_life_h=1000.0)
    with pytest.raises(InputError, match="activity_mbq must be >= 0"):
        assess_release("Lu-177", -1.0)
