"""Unit conversions against hand-calculated values."""

import pytest

from theradose import units


def test_activity_conversions() -> None:
    # 1 mCi = 37 MBq exactly (1 Ci = 3.7e10 Bq by definition).
    assert units.mci_to_mbq(200.0) == pytest.approx(7400.0)
    assert units.mbq_to_gbq(7400.0) == pytest.approx(7.4)
    assert units.gbq_to_mbq(7.4) == pytest.approx(7400.0)
    assert units.bq_to_mbq(units.mbq_to_bq(3.5)) == pytest.approx(3.5)


def test_decays_and_dose() -> None:
    # 1 MBq·h = 1e6 Bq × 3600 s = 3.6e9 decays.
    assert units.decays_from_tia_mbq_h(1.0) == pytest.approx(3.6e9)
    # 1 MeV deposited in 1 g: 1.602176634e-13 J / 1e-3 kg = 1.602176634e-10 Gy.
    assert units.dose_gy_from_energy_mev_and_mass_g(1.0, 1.0) == pytest.approx(1.602176634e-10)


def test_time_and_length() -> None:
    assert units.hours_to_seconds(2.0) == 7200.0
    assert units.days_to_hours(6.647) == pytest.approx(159.528)
    assert units.minutes_to_hours(90.0) == pytest.approx(1.5)
    assert units.mm3_to_ml(1000.0) == pytest.approx(1.0)
    assert units.cm_to_mm(2.0) == 20.0


def test_dose_equivalent_conversions() -> None:
    """10 CFR 20.1004: 1 rem = 0.01 Sv; hence 1 mrem = 10 µSv."""
    assert units.rem_to_msv(0.5) == pytest.approx(5.0)
    assert units.msv_to_rem(1.0) == pytest.approx(0.1)
    assert units.usv_to_mrem(70.0) == pytest.approx(7.0)
    assert units.msv_to_usv(units.usv_to_msv(123.0)) == pytest.approx(123.0)
