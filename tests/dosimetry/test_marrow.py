"""Red marrow dosimetry: reference data, blood curve integral, blood- and image-based doses (hand values)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from theradose.dosimetry.marrow import (
    blood_based_dose,
    compare_methods,
    cross_dose_gy,
    image_based_dose,
    integrate_blood_curve,
    red_marrow_mass_g,
    rmblr_extracellular,
    rmblr_for,
    vertebral_marrow_fraction,
)
from theradose.errors import InputError

LU177_LAMBDA = math.log(2) / (6.647 * 24)
E_MEV = 0.1479
#: Gy per MBq·h per gram: 3600 s · 10⁶ decays/(MBq s) · E · 1.602e-13 J/MeV / 1e-3 kg
GY_PER_MBQ_H_PER_G = 3600.0 * 1e6 * E_MEV * 1.602176634e-13 / 1e-3


def test_reference_values() -> None:
    # ICRP 70 Table 41 (Cristy 1981): lumbar vertebrae 12.3 % of the adult red marrow, 5 vertebrae
    assert vertebral_marrow_fraction(["L2", "L3", "L4"]) == pytest.approx(3 * 0.123 / 5)
    assert vertebral_marrow_fraction(["t12"]) == pytest.approx(0.161 / 12)
    # ICRP 89: male 1170 g at 73 kg, female 900 g at 60 kg, scaled by body mass
    assert red_marrow_mass_g(sex="M", weight_kg=73.0) == pytest.approx(1170.0)
    assert red_marrow_mass_g(sex="F", weight_kg=90.0) == pytest.approx(1350.0)
    # Sgouros 1993: 0.19/(1 − 0.47) = 0.358
    assert rmblr_extracellular(0.47) == pytest.approx(0.3585, abs=1e-4)
    assert rmblr_for("177Lu-PSMA-617")[0] == 1.0
    with pytest.raises(InputError, match="no cited"):
        rmblr_for("131I-mystery")
    for bad in (["L6"], ["X1"], ["L2", "L2"], []):
        with pytest.raises(InputError):
            vertebral_marrow_fraction(bad)
    with pytest.raises(InputError, match="sex"):
        red_marrow_mass_g(sex="", weight_kg=70.0)


def test_blood_curve_integral_of_a_bi_exponential() -> None:
    t = np.array([0.1, 0.5, 1.0, 2.0, 4.0, 24.0, 48.0, 96.0, 168.0])
    a1, r1, a2, r2 = 8.0e5, 1.2 + LU177_LAMBDA, 2.0e5, 0.02 + LU177_LAMBDA
    c = a1 * np.exp(-r1 * t) + a2 * np.exp(-r2 * t)
    out = integrate_blood_curve(t, c, relative_sd=0.02, decay_constant_per_h=LU177_LAMBDA)
    assert out.tia_per_ml_mbq_h == pytest.approx((a1 / r1 + a2 / r2) / 1e6, rel=1e-3)
    # a fast distribution phase as well: only the tri-exponential integrates it (AICc with 9 samples)
    a0, r0 = 2.0e6, 2.5
    c3 = c + a0 * np.exp(-r0 * t)
    out3 = integrate_blood_curve(t, c3, relative_sd=0.02, decay_constant_per_h=LU177_LAMBDA)
    assert out3.model == "exp3"
    assert out3.tia_per_ml_mbq_h == pytest.approx((a0 / r0 + a1 / r1 + a2 / r2) / 1e6, rel=1e-3)
    with pytest.raises(InputError, match="increasing"):
        integrate_blood_curve([2.0, 1.0], [1.0, 1.0], decay_constant_per_h=LU177_LAMBDA)


def test_blood_based_self_dose_by_hand() -> None:
    t = [0.5, 1.0, 4.0, 24.0, 72.0, 168.0]
    c0, rate = 1.0e5, 0.03 + LU177_LAMBDA
    samples = [c0 * math.exp(-rate * x) for x in t]
    dose = blood_based_dose(
        t, samples, radiopharmaceutical="177Lu-DOTATATE", electron_energy_mev=E_MEV,
        decay_constant_per_h=LU177_LAMBDA, sex="M", weight_kg=80.0, sample_relative_sd=0.02,
    )  # fmt: skip
    per_g = c0 / rate / 1e6 / 1.06  # RMBLR 1, blood density 1.06
    assert dose.self_dose_gy == pytest.approx(per_g * GY_PER_MBQ_H_PER_G, rel=1e-3)
    assert dose.marrow_tia_mbq_h == pytest.approx(per_g * 1170.0 * 80.0 / 73.0, rel=1e-3)
    assert (
        dose.budget["rmblr"] == 0.20 and dose.cross_dose_gy is None and "S(red marrow" in dose.cross_dose_note
    )
    plasma = blood_based_dose(
        t, samples, radiopharmaceutical="177Lu-DOTATATE", electron_energy_mev=E_MEV,
        decay_constant_per_h=LU177_LAMBDA, sex="M", weight_kg=80.0, sample_kind="plasma", haematocrit=0.4,
        rmblr=0.5, rmblr_relative_sigma=0.1,
    )  # fmt: skip
    assert plasma.self_dose_gy == pytest.approx(0.5 * 0.6 * dose.self_dose_gy, rel=1e-3)
    with pytest.raises(InputError, match="haematocrit"):
        blood_based_dose(
            t, samples, radiopharmaceutical="177Lu-DOTATATE", electron_energy_mev=E_MEV,
            decay_constant_per_h=LU177_LAMBDA, sex="M", weight_kg=80.0, sample_kind="plasma",
        )  # fmt: skip


def test_image_based_dose_and_comparison_by_hand() -> None:
    image = image_based_dose(
        100.0, vertebrae=["L2", "L3", "L4"], electron_energy_mev=E_MEV, sex="M", weight_kg=73.0,
        voi_tia_relative_sigma=0.05,
    )  # fmt: skip
    total = 100.0 / 0.0738
    assert image.marrow_tia_mbq_h == pytest.approx(total)
    assert image.self_dose_gy == pytest.approx(total / 1170.0 * GY_PER_MBQ_H_PER_G)
    assert image.relative_sigma == pytest.approx(math.sqrt(0.05**2 + 0.15**2 + 0.15**2))
    blood = image_based_dose(
        110.0, vertebrae=["L2", "L3", "L4"], electron_energy_mev=E_MEV, sex="M", weight_kg=73.0
    )
    both = compare_methods(blood, image)
    assert both.disagreement_percent == pytest.approx(100.0 * (100.0 / 110.0 - 1.0))
    assert both.within_uncertainty is True
    assert compare_methods(None, image).disagreement_percent is None


def test_cross_dose_from_s_values() -> None:
    # 1000 MBq·h in the liver, S(RM <- liver) = 1e-6 mGy/(MBq s): 1000·3600·1e-6 mGy = 3.6e-3 Gy
    assert cross_dose_gy({"liver": 1000.0}, {"liver": 1e-6}) == pytest.approx(3.6e-3)
    with pytest.raises(InputError, match="kidneys"):
        cross_dose_gy({"kidneys": 1.0}, {})
