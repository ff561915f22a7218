"""Mass scaling of reference S values and user S-value tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from theradose.dosimetry.svalues import load_s_value_table, scale_self_s_value
from theradose.errors import InputError


def test_mass_scaling_by_hand() -> None:
    """Reference kidneys 310 g → patient 155 g: electrons ×2, photons ×2^(2/3) = 1.5874 (MIRD 11; OLINDA)."""
    scaled = scale_self_s_value(
        electron_s_mgy_per_mbq_s=1.0e-4, photon_s_mgy_per_mbq_s=1.0e-5, reference_mass_g=310.0, mass_g=155.0
    )
    assert scaled == pytest.approx(2.0e-4 + 1.5874011e-5, rel=1e-7)
    with pytest.raises(InputError, match="mass_g"):
        scale_self_s_value(
            electron_s_mgy_per_mbq_s=1.0, photon_s_mgy_per_mbq_s=0.0, reference_mass_g=310.0, mass_g=0.0
        )


def test_mass_scaling_agrees_with_sphere_model_for_electrons(electron_emitter) -> None:
    """Organ electron self-dose from the mass model follows exactly 1/m."""
    from theradose.dosimetry.sphere import self_s_value

    ref = self_s_value(electron_emitter, mass_g=310.0, kind="organ")
    patient = self_s_value(electron_emitter, mass_g=200.0, kind="organ")
    scaled = scale_self_s_value(
        electron_s_mgy_per_mbq_s=ref.s_electron_mgy_per_mbq_s,
        photon_s_mgy_per_mbq_s=0.0,
        reference_mass_g=310.0,
        mass_g=200.0,
    )
    assert scaled == pytest.approx(patient.s_value_mgy_per_mbq_s, rel=1e-12)


def test_load_table(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        "# OLINDA export\nsource,target,s_mgy_per_mbq_s\nliver,kidney,3.1e-6\nspleen,kidney,2e-6\n"
    )
    table = load_s_value_table(path)
    assert table.get(source="liver", target="kidney") == pytest.approx(3.1e-6)
    assert table.get(source="kidney", target="liver") is None
    assert table.sources_for("kidney") == ["liver", "spleen"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("from,to,s\nliver,kidney,1\n", "lacks column"),
        ("source,target,s_mgy_per_mbq_s\nliver,kidney,abc\n", "row 2.*not a number"),
        ("source,target,s_mgy_per_mbq_s\nliver,kidney,-1\n", "non-negative"),
        ("source,target,s_mgy_per_mbq_s\nliver,kidney,1\nliver,kidney,2\n", "twice"),
        ("source,target,s_mgy_per_mbq_s\n,kidney,1\n", "named"),
    ],
)
def test_bad_tables(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        load_s_value_table(path)


def test_missing_table(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_s_value_table(tmp_path / "none.csv")
