"""HU → density and μ maps against definitions and published attenuation coefficients."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from theradose.errors import InputError
from theradose.imaging import Volume
from theradose.imaging.density import (
    DensityTable,
    attenuation_map,
    density_map,
    linear_attenuation_per_cm,
    load_density_table,
)


def ct(values: list[float]) -> Volume:
    return Volume.from_spacing(np.array(values, dtype=np.float32).reshape(1, 1, -1), (1, 1, 1), unit="HU")


def test_default_table_points_and_interpolation() -> None:
    rho = density_map(ct([-2000, -1000, -500, 0, 21.5, 43, 1559, 801, 3075])).array[0, 0]
    # Hand values: clamp below air; half way air-water = (0.001205 + 1) / 2; water; half way water-muscle
    # = 1.025; muscle 1.05; bone 1.92; half way muscle-bone = 1.485; one muscle-bone span (1516 HU) above
    # bone: 1.92 + 0.87.
    np.testing.assert_allclose(
        rho, [0.001205, 0.001205, 0.5006025, 1.0, 1.025, 1.05, 1.92, 1.485, 2.79], rtol=1e-6
    )


def test_soft_tissue_point_is_icru44_muscle_at_its_stoichiometric_ct_number() -> None:
    """ICRU Report 44 (1989) skeletal muscle: 1.05 g/cm³, mass % H 10.2, C 14.3, N 3.4, O 71.0, Na 0.1,
    P 0.2, S 0.3, Cl 0.1, K 0.4; CT number 1000 (mu_muscle / mu_water - 1) at 70 keV (Schneider 1996)."""
    import xraydb

    composition = {"H": 10.2, "C": 14.3, "N": 3.4, "O": 71.0, "Na": 0.1}
    composition |= {"P": 0.2, "S": 0.3, "Cl": 0.1, "K": 0.4}
    formula = "".join(f"{el}{w / xraydb.atomic_mass(el):.8f}" for el, w in composition.items())
    mu_m = linear_attenuation_per_cm(formula, 70.0, 1.05)
    mu_w = linear_attenuation_per_cm("water", 70.0, 1.0)
    table = load_density_table()
    assert table.hu[2] == pytest.approx(1000 * (mu_m / mu_w - 1), abs=1.0)
    assert table.density_g_per_ml[2] == pytest.approx(1.05)


def test_bone_point_is_the_stoichiometric_ct_number() -> None:
    """The shipped bone CT number equals 1000 (mu_bone / mu_water - 1) at 70 keV (Schneider 1996 method)."""
    table = load_density_table()
    mu_w = linear_attenuation_per_cm("water", 70.0, 1.0)
    mu_b = linear_attenuation_per_cm("cortical_bone", 70.0, 1.92)
    assert table.hu[-1] == pytest.approx(1000 * (mu_b / mu_w - 1), abs=1.0)


def test_water_attenuation_matches_nist_xcom() -> None:
    """NIST XCOM (Berger et al.), water, total with coherent: 0.1370 cm^2/g at 200 keV, 0.1707 at 100 keV."""
    assert linear_attenuation_per_cm("water", 200.0, 1.0) == pytest.approx(0.1370, rel=0.01)
    assert linear_attenuation_per_cm("water", 100.0, 1.0) == pytest.approx(0.1707, rel=0.01)


def test_mu_map_bilinear_model() -> None:
    e = 208.4
    mu = attenuation_map(ct([-1000, -200, 0, 1559, 3118]), energy_kev=e).array[0, 0].astype(float)
    w = linear_attenuation_per_cm("water", e, 1.0)
    b = linear_attenuation_per_cm("cortical_bone", e, 1.92)
    np.testing.assert_allclose(mu[:4], [0.001205 * w, (1 - 0.2 * (1 - 0.001205)) * w, w, b], rtol=1e-6)
    np.testing.assert_allclose(mu[4], 2 * b - w, rtol=1e-6)  # linear extension, w = 2
    assert 0.12 < w < 0.14  # water at 208 keV: about 0.135 /cm


def test_custom_table_file_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "scanner.csv"
    path.write_text("# scanner A, 120 kVp\nhu,density_g_per_ml\n-1000,0.001\n0,1.0\n1000,1.6\n")
    table = load_density_table(path)
    assert table.density_g_per_ml_at(500.0) == pytest.approx(1.3)
    with pytest.raises(InputError, match="increase strictly"):
        DensityTable((0.0, 0.0), (1.0, 1.1))
    with pytest.raises(InputError, match="non-decreasing"):
        DensityTable((0.0, 1.0), (1.0, 0.9))
    with pytest.raises(InputError, match="does not exist"):
        load_density_table(tmp_path / "none.csv")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="columns"):
        load_density_table(tmp_path / "bad.csv")
    with pytest.raises(InputError, match="Volume in HU"):
        density_map(Volume.from_spacing(np.zeros((1, 1, 1)), (1, 1, 1), unit="Bq/mL"))
    with pytest.raises(InputError, match="energy_kev"):
        attenuation_map(ct([0.0]), energy_kev=-5.0)
