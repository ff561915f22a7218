"""Kinetics library: analytic TIA vs numerical integration, hand-calculated doses, variability."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from theradose.errors import InputError
from theradose.phantoms.anatomy import Anatomy, make_anatomy, make_grid, slices_to_cover_anatomy
from theradose.phantoms.kinetics import (
    CompartmentKinetics,
    load_kinetics,
    patient_kinetics,
    region_truth,
    truth_dose,
)

#: 177Lu physical half-life 6.647 d = 159.53 h (ICRP 107).
LU177_HALF_LIFE_H = 159.528
#: 177Lu mean electron energy per decay (β + IC + Auger), ICRP 107: 0.1479 MeV.
LU177_ELECTRON_MEV = 0.1479


def test_hand_calculated_mono_exponential_tia() -> None:
    """f = 0.1, T½bio = 40 h, no uptake: Ã/A0 = f / (ln2/40 + ln2/159.53) = 4.614 h (by hand)."""
    c = CompartmentKinetics("organ", (1,), 0.1, 0.0, ((1.0, 40.0),), mass_weighted=False)
    lam_p = math.log(2) / LU177_HALF_LIFE_H
    assert c.tia_fraction_h(decay_constant_per_h=lam_p) == pytest.approx(4.6139, rel=1e-4)
    assert float(c.activity_fraction(0.0, decay_constant_per_h=lam_p)) == pytest.approx(0.1)


@pytest.mark.parametrize("tracer", ["psma", "dotatate"])
@pytest.mark.parametrize("seed", [None, 7])
def test_truth_tia_equals_numerical_integral(anatomy: Anatomy, tracer: str, seed: int | None) -> None:
    """Analytic TIA of every compartment = scipy.integrate.quad of its A(t) over 0..∞ (independent)."""
    kin = patient_kinetics(anatomy, tracer, injected_activity_mbq=7400.0, seed=seed)
    for c in kin.compartments:
        numeric, _ = quad(lambda t, name=c.name: float(kin.activity_mbq(name, t)), 0.0, np.inf, limit=200)
        assert kin.tia_mbq_h(c.name) == pytest.approx(numeric, rel=1e-6), c.name


def test_voxel_tia_map_sums_to_compartment_tia(anatomy: Anatomy) -> None:
    kin = patient_kinetics(anatomy, "psma", injected_activity_mbq=6000.0, seed=3)
    tia_map = kin.tia_map_mbq_h()
    assert tia_map.sum() == pytest.approx(sum(kin.tia_mbq_h(c.name) for c in kin.compartments), rel=1e-9)
    kidneys = float(tia_map[anatomy.mask("kidneys")].sum())
    assert kidneys == pytest.approx(kin.tia_mbq_h("kidneys"), rel=1e-9)
    # activity map at 24 h: sum equals the sum of compartment activities
    a24 = kin.activity_map_mbq(24.0)
    assert a24.sum() == pytest.approx(sum(float(kin.activity_mbq(c.name, 24.0)) for c in kin.compartments))


def test_local_deposition_dose_by_hand(anatomy: Anatomy) -> None:
    """D = Ã·3.6e9 decays/(MBq·h) · 0.1479 MeV · 1.602e-13 J/MeV / m (kg), kidneys, by hand."""
    kin = patient_kinetics(anatomy, "psma", injected_activity_mbq=1000.0)
    tia_map = kin.tia_map_mbq_h()
    dose = truth_dose(anatomy, tia_map, engine="local")
    truth = {r.name: r for r in region_truth(anatomy, tia_map, dose.dose_gy)}
    kidneys = truth["kidneys"]
    hand_gy = kidneys.tia_mbq_h * 3.6e9 * LU177_ELECTRON_MEV * 1.602176634e-13 / (kidneys.mass_g / 1000.0)
    assert kidneys.dose_gy == pytest.approx(hand_gy, rel=2e-3)
    assert dose.engine == "local"


def test_voxel_engines_agree_with_local_deposition_for_organs(anatomy: Anatomy) -> None:
    """177Lu electrons (mean β energy 133 keV, ranges < 2 mm) deposit almost all their energy in the
    organ of emission, so organ-mean doses from voxel S-values (vsv) stay within 5 % of local
    deposition."""
    kin = patient_kinetics(anatomy, "psma", injected_activity_mbq=1000.0)
    tia_map = kin.tia_map_mbq_h()
    local = truth_dose(anatomy, tia_map, engine="local").dose_gy
    vsv = truth_dose(anatomy, tia_map, engine="vsv").dose_gy
    for region in ("kidneys", "liver", "parotids"):
        mask = anatomy.mask(region)
        assert float(vsv[mask].mean()) == pytest.approx(float(local[mask].mean()), rel=0.05), region
    with pytest.raises(InputError, match="engine"):
        truth_dose(anatomy, tia_map, engine="gpu")  # type: ignore[arg-type]


# Published absorbed doses per administered activity (Gy/GBq), used as plausibility ranges:
# PSMA-617 kidneys 0.39 (Violet 2019) .. 0.82 (PMC5472088); parotids 0.58 (Violet) .. 1.9 (PMC5472088);
# DOTATATE kidneys 0.38 (PMC6300448) .. 0.65, spleen 0.85, liver 0.30 (Lutathera prescribing information).
PUBLISHED_RANGES_GY_PER_GBQ = {
    ("psma", "kidneys"): (0.3, 0.9),
    ("psma", "parotids"): (0.3, 2.0),
    ("psma", "submandibulars"): (0.2, 1.0),
    ("dotatate", "kidneys"): (0.3, 0.9),
    ("dotatate", "spleen"): (0.5, 1.3),
    ("dotatate", "liver"): (0.15, 0.6),
}


@pytest.mark.parametrize(("tracer", "region"), sorted(PUBLISHED_RANGES_GY_PER_GBQ))
def test_population_doses_fall_in_published_ranges(anatomy: Anatomy, tracer: str, region: str) -> None:
    kin = patient_kinetics(anatomy, tracer, injected_activity_mbq=1000.0)
    tia = kin.tia_map_mbq_h()
    truth = {r.name: r for r in region_truth(anatomy, tia, truth_dose(anatomy, tia, engine="local").dose_gy)}
    low, high = PUBLISHED_RANGES_GY_PER_GBQ[(tracer, region)]
    assert low <= truth[region].dose_gy <= high


def test_variability_is_lognormal_with_the_stated_cv() -> None:
    """log of the sampled kidney uptake factor: sd ≈ sqrt(ln(1 + cv²)) = 0.294 for cv = 0.30."""
    grid = make_grid((slices_to_cover_anatomy(12.0), 32, 32), 12.0)
    small = make_anatomy(grid)
    base = patient_kinetics(small, "psma").compartment("kidneys").fraction_ia
    logs = [
        math.log(patient_kinetics(small, "psma", seed=s).compartment("kidneys").fraction_ia / base)
        for s in range(80)
    ]
    assert np.std(logs) == pytest.approx(math.sqrt(math.log1p(0.30**2)), rel=0.3)
    assert np.mean(np.exp(logs)) == pytest.approx(1.0, abs=0.12)


def test_library_files_are_consistent() -> None:
    for tracer in ("psma", "dotatate"):
        lib = load_kinetics(tracer)
        assert lib.nuclide == "Lu-177"
        assert sum(c.fraction_ia for c in lib.compartments) < 1.0
    with pytest.raises(InputError, match="tracer"):
        load_kinetics("fdg")


def test_bad_time_and_activity(anatomy: Anatomy) -> None:
    with pytest.raises(InputError, match="injected_activity_mbq"):
        patient_kinetics(anatomy, "psma", injected_activity_mbq=-1.0)
    kin = patient_kinetics(anatomy, "psma")
    with pytest.raises(InputError, match="time_h"):
        kin.activity_map_mbq(-2.0)


def test_monte_carlo_truth_adds_the_photon_cross_dose() -> None:
    """177Lu emits 0.148 MeV per decay in electrons and 0.035 MeV in photons (ICRP 107); most photon
    energy escapes the organ, so Monte Carlo (photons transported) exceeds the electron-only voxel
    S-value dose by a few per cent, not by more than the photon share (~20 %)."""
    grid = make_grid((slices_to_cover_anatomy(12.0), 32, 32), 12.0)
    small = make_anatomy(grid, tumours=0)
    tia = patient_kinetics(small, "psma", injected_activity_mbq=1000.0).tia_map_mbq_h()
    mc = truth_dose(small, tia, engine="mc", seed=1)
    vsv = truth_dose(small, tia, engine="vsv").dose_gy
    assert mc.engine == "mc" and "Monte Carlo" in mc.description
    for region in ("kidneys", "liver"):
        mask = small.mask(region)
        ratio = float(mc.dose_gy[mask].mean()) / float(vsv[mask].mean())
        assert 1.0 < ratio < 1.2, (region, ratio)
