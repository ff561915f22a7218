"""DVH metrics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from theradose.dosimetry.dvh import (
    bed_volume,
    dale_bed_mono_exponential_gy,
    dose_at_volume_gy,
    dose_metrics,
    dose_metrics_by_label,
    dose_volume_histogram,
    eud_gy,
    generalized_eud_gy,
    volume_fraction_at_dose,
)
from theradose.errors import GeometryError, InputError
from theradose.imaging.volume import Volume


def test_dose_at_volume_on_1_to_100_gy() -> None:
    """100 equal voxels with 1, 2, ..., 100 Gy: the 2 % hottest are 99 and 100 Gy, so D2 = 99 Gy;
    D50 = 51 Gy (50 voxels ≥ 51); D98 = 3 Gy (98 voxels ≥ 3)."""
    dose = np.arange(1.0, 101.0)[::-1].reshape(4, 5, 5)
    assert dose_at_volume_gy(dose, 2.0) == 99.0
    assert dose_at_volume_gy(dose, 50.0) == 51.0
    assert dose_at_volume_gy(dose, 98.0) == 3.0
    assert dose_at_volume_gy(dose, 100.0) == 1.0
    m = dose_metrics(dose, voxel_volume_ml=0.5)
    assert (m.dmean_gy, m.dmax_gy, m.dmin_gy) == (50.5, 100.0, 1.0)
    assert (m.d2_gy, m.d50_gy, m.d98_gy) == (99.0, 51.0, 3.0)
    assert m.volume_ml == 50.0
    assert volume_fraction_at_dose(dose, 90.0) == pytest.approx(0.11)  # 90..100 Gy: 11 voxels


def test_dvh_curves() -> None:
    dose = np.array([0.0, 1.0, 1.0, 2.0, 4.0]).reshape(1, 1, 5)
    dvh = dose_volume_histogram(dose, n_bins=4, voxel_volume_ml=2.0)
    np.testing.assert_allclose(dvh.dose_gy, [0, 1, 2, 3, 4])
    # fraction with dose >= 0, 1, 2, 3, 4 Gy
    np.testing.assert_allclose(dvh.cumulative_fraction, [1.0, 0.8, 0.4, 0.2, 0.2])
    np.testing.assert_allclose(dvh.differential_ml, [2.0, 4.0, 2.0, 2.0])
    assert dvh.volume_ml == 10.0


def test_eud_by_hand() -> None:
    """Doses 10 and 20 Gy, α = 0.1/Gy: EUD = −ln((e^−1 + e^−2)/2)/0.1 = 13.7989 Gy (Niemierko 1997);
    gEUD with a = 2: sqrt((100 + 400)/2) = 15.8114 Gy (Niemierko 1999)."""
    dose = np.array([10.0, 20.0]).reshape(1, 1, 2)
    assert eud_gy(dose, alpha_per_gy=0.1) == pytest.approx(13.7989, abs=1e-4)
    assert generalized_eud_gy(dose, a=2.0) == pytest.approx(15.8114, abs=1e-4)
    assert generalized_eud_gy(dose, a=1.0) == pytest.approx(15.0)
    # EUD of a uniform dose is that dose
    assert eud_gy(np.full((2, 2, 2), 7.0), alpha_per_gy=0.3) == pytest.approx(7.0)


def test_dale_bed_by_hand() -> None:
    """D = 20 Gy, T_eff = 50 h, α/β = 3 Gy, T_rep = 1.5 h: λ = 0.0138629/h, μ = 0.4620981/h,
    BED = 20·(1 + 20·λ/((μ + λ)·3)) = 23.8835 Gy (Dale 1985)."""
    lam = math.log(2) / 50.0
    mu = math.log(2) / 1.5
    expected = 20.0 * (1.0 + 20.0 * lam / ((mu + lam) * 3.0))
    assert expected == pytest.approx(23.8835, abs=1e-4)
    bed = dale_bed_mono_exponential_gy(
        np.array([20.0, 0.0]),
        effective_half_life_h=np.array([50.0, 50.0]),
        alpha_beta_gy=3.0,
        repair_half_time_h=1.5,
    )
    np.testing.assert_allclose(bed, [expected, 0.0])
    with pytest.raises(InputError):
        dale_bed_mono_exponential_gy(
            np.ones(2), effective_half_life_h=0.0, alpha_beta_gy=3.0, repair_half_time_h=1.5
        )


def test_voxel_bed_agrees_with_radiobiology_package() -> None:
    """The vectorised BED equals theradose.radiobiology.bed_gy voxel by voxel (separate implementation)."""
    from theradose.radiobiology import bed_gy

    dose = np.array([0.5, 5.0, 30.0, 120.0])
    t_eff = np.array([20.0, 60.0, 100.0, 150.0])
    ours = dale_bed_mono_exponential_gy(
        dose, effective_half_life_h=t_eff, alpha_beta_gy=2.6, repair_half_time_h=2.8
    )
    reference = [
        bed_gy(float(d), effective_half_life_h=float(t), alpha_beta_gy=2.6, repair_half_time_h=2.8)
        for d, t in zip(dose, t_eff, strict=True)
    ]
    np.testing.assert_allclose(ours, reference, rtol=1e-12)


def test_metrics_by_label_and_bed_volume_histogram() -> None:
    dose_array = np.zeros((2, 2, 2))
    dose_array[0] = [[1.0, 2.0], [3.0, 4.0]]
    dose_array[1] = 10.0
    labels_array = np.zeros((2, 2, 2), dtype=np.int32)
    labels_array[0] = 1
    labels_array[1, 0] = 2
    dose = Volume.from_spacing(dose_array, (2.0, 2.0, 2.0), unit="Gy")
    labels = dose.with_array(labels_array, unit="label")
    result = dose_metrics_by_label(dose, labels, n_bins=10)
    assert sorted(result) == [1, 2]
    assert result[1].metrics.dmean_gy == 2.5
    assert result[1].metrics.volume_ml == pytest.approx(4 * 0.008)
    assert result[2].metrics.dmax_gy == 10.0
    # BED-volume histogram: the same machinery on a BED map
    bed = bed_volume(dose, effective_half_life_h=60.0, alpha_beta_gy=2.5, repair_half_time_h=2.0)
    np.testing.assert_allclose(
        bed.array,
        dale_bed_mono_exponential_gy(
            dose_array, effective_half_life_h=60.0, alpha_beta_gy=2.5, repair_half_time_h=2.0
        ),
    )
    bed_result = dose_metrics_by_label(bed, labels)
    assert bed_result[2].metrics.dmean_gy > 10.0
    assert bed_result[1].dvh.cumulative_fraction[0] == 1.0
    with pytest.raises(GeometryError):
        dose_metrics_by_label(dose, Volume.from_spacing(labels_array, (1.0, 1.0, 1.0), unit="label"))
    with pytest.raises(InputError):
        dose_at_volume_gy(dose_array, 0.0)
