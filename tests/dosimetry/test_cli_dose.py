"""`theradose dose sphere` and `theradose dose organ`: JSON contract, human tables, exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_runner import run_cli as run_process
from cli_runner import run_in_process as run

JOULE_PER_MEV = 1.602176634e-13


def test_sphere_json_contract() -> None:
    result = run_process("dose", "sphere", "--nuclide", "177Lu", "--mass-g", "1", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    full_electron = 0.14792 * JOULE_PER_MEV / 1e-3 * 1e9  # all electron energy in 1 g, mGy/(MBq s)
    assert 0.94 * full_electron < data["s_value_mgy_per_mbq_s"] < full_electron
    assert 0.9 < data["electron_absorbed_fraction"] < 1.0
    assert 0.0 < data["photon_absorbed_fraction"] < 0.05


def _regions(tmp_path: Path, **overrides: object) -> Path:
    data: dict[str, object] = {
        "nuclide": "Lu-177",
        "administered_activity_mbq": 7400,
        "regions": [
            {"name": "kidney_left", "kind": "organ", "mass_g": 150, "mass_sigma_g": 15,
             "tia_mbq_h": 7600, "tia_sigma_mbq_h": 500},
            {"name": "lesion", "kind": "sphere", "mass_g": 12, "tia_mbq_h": 3000},
        ],
    }  # fmt: skip
    data.update(overrides)
    path = tmp_path / "regions.json"
    path.write_text(json.dumps(data))
    return path


def test_organ_json_contract(tmp_path: Path) -> None:
    result = run("dose", "organ", str(_regions(tmp_path)), "--json")
    assert result.returncode == 0, result.stderr
    regions = json.loads(result.stdout)["regions"]
    assert [r["name"] for r in regions] == ["kidney_left", "lesion"]
    kidney = regions[0]
    assert set(kidney) >= {"name", "dose_gy", "dose_sigma_gy", "dose_gy_per_gbq"}
    # electrons alone by hand: 7600 MBq h · 3.6e9 · 0.14792 MeV · 1.602e-13 J/MeV / 0.150 kg = 4.32 Gy;
    # photons add about 1 % for a 150 g organ.
    electrons_only = 7600 * 3.6e9 * 0.14792 * JOULE_PER_MEV / 0.150
    assert electrons_only < kidney["dose_gy"] < 1.03 * electrons_only
    assert kidney["dose_gy_per_gbq"] == pytest.approx(kidney["dose_gy"] / 7.4)
    # σ: 500/7600 = 6.6 % TIA and ~10 % mass in quadrature ≈ 12 %
    assert kidney["dose_sigma_gy"] / kidney["dose_gy"] == pytest.approx(0.12, abs=0.01)


def test_organ_human_table_and_cross_dose(tmp_path: Path) -> None:
    table = tmp_path / "s.csv"
    table.write_text("source,target,s_mgy_per_mbq_s\nlesion,kidney_left,1e-5\n")
    plain = run("dose", "organ", str(_regions(tmp_path)), "--json")
    cross = run("dose", "organ", str(_regions(tmp_path)), "--s-values", str(table), "--json")
    assert cross.returncode == 0, cross.stderr
    added = (
        json.loads(cross.stdout)["regions"][0]["dose_gy"] - json.loads(plain.stdout)["regions"][0]["dose_gy"]
    )
    assert added == pytest.approx(3000 * 3600 * 1e-5 / 1e3, rel=1e-9)  # Ã · S in Gy
    human = run("dose", "organ", str(_regions(tmp_path)))
    assert human.returncode == 0 and "lesion" in human.stdout and "Absorbed dose" in human.stdout


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"nuclide": "Lu-999"}, "Lu-999"),
        ({"regions": []}, "regions"),
        ({"regions": [{"name": "k", "mass_g": 150}]}, "tia_mbq_h"),
        ({"regions": [{"name": "k", "mass_g": "heavy", "tia_mbq_h": 1}]}, "mass_g"),
        ({"regions": [{"name": "k", "kind": "blob", "mass_g": 1, "tia_mbq_h": 1}]}, "kind"),
        ({"regions": [{"name": "k", "mass_g": 1, "tia_mbq_h": 1, "volume": 3}]}, "unknown field"),
    ],
)
def test_organ_bad_input_exits_2(tmp_path: Path, overrides: dict[str, object], message: str) -> None:
    result = run("dose", "organ", str(_regions(tmp_path, **overrides)), "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr


def test_organ_missing_or_broken_file_exits_2(tmp_path: Path) -> None:
    missing = run_process("dose", "organ", str(tmp_path / "none.json"))
    assert (
        missing.returncode == 2 and missing.stderr.startswith("error: ") and "Traceback" not in missing.stderr
    )
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = run("dose", "organ", str(broken), "--json")
    assert result.returncode == 2 and "not valid JSON" in result.stderr


def test_sphere_bad_mass_exits_2() -> None:
    result = run("dose", "sphere", "--nuclide", "Lu-177", "--mass-g", "0", "--json")
    assert result.returncode == 2
    assert "mass_g" in result.stderr


def test_shipped_example_regions_run() -> None:
    """examples/organ_dosimetry/regions.json goes through `dose organ`; every dose = Ã·S_self by hand
    within the photon share (electrons 0.14792 MeV/decay absorbed locally for organs)."""
    example = Path(__file__).resolve().parents[2] / "examples" / "organ_dosimetry" / "regions.json"
    result = run("dose", "organ", str(example), "--json")
    assert result.returncode == 0, result.stderr
    spec = {r["name"]: r for r in json.loads(example.read_text())["regions"]}
    for row in json.loads(result.stdout)["regions"]:
        region = spec[row["name"]]
        electrons = region["tia_mbq_h"] * 3.6e9 * 0.14792 * JOULE_PER_MEV / (region["mass_g"] / 1e3)
        assert 0.9 * electrons < row["dose_gy"] < 1.06 * electrons


def test_sphere_progeny_flag() -> None:
    """225Ac alone emits one alpha (~5.9 MeV incl. recoil); with its chain ~28 MeV per parent decay."""
    chain = json.loads(run("dose", "sphere", "--nuclide", "Ac-225", "--mass-g", "10", "--json").stdout)
    alone = json.loads(
        run("dose", "sphere", "--nuclide", "Ac-225", "--mass-g", "10", "--no-progeny", "--json").stdout
    )
    assert chain["s_alpha_mgy_per_mbq_s"] / alone["s_alpha_mgy_per_mbq_s"] == pytest.approx(
        28.03 / 5.89, rel=0.01
    )
