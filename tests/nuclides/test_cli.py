"""``theradose nuclide`` CLI contract."""

import json
import math

from cli_runner import run_cli as run


def test_show_json_contract() -> None:
    result = run("nuclide", "show", "177Lu", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in (
        "name",
        "half_life_h",
        "beta_energy_mev_per_decay",
        "electron_energy_mev_per_decay",
        "photon_energy_mev_per_decay",
        "alpha_energy_mev_per_decay",
        "photon_lines",
        "air_kerma_rate_constant_ugy_m2_per_gbq_h",
    ):
        assert key in data
    assert data["name"] == "Lu-177"
    assert math.isclose(data["half_life_h"], 6.647 * 24, rel_tol=1e-9)
    assert {"energy_kev", "yield"} <= set(data["photon_lines"][0])


def test_show_ac225_reports_chain() -> None:
    data = json.loads(run("nuclide", "show", "Ac-225", "--json").stdout)
    assert data["alpha_energy_mev_per_decay"] > 5.0
    assert data["chain_equilibrium"]["alpha_energy_mev_per_decay"] > 27.0


def test_decay_json() -> None:
    result = run("nuclide", "decay", "Lu-177", "--activity-mbq", "7400", "--elapsed-h", "159.528", "--json")
    assert result.returncode == 0, result.stderr
    assert math.isclose(json.loads(result.stdout)["activity_mbq"], 3700.0, rel_tol=1e-9)


def test_human_table() -> None:
    result = run("nuclide", "show", "Lu-177")
    assert result.returncode == 0
    assert "half_life_h" in result.stdout


def test_unknown_nuclide_exits_2_with_one_line() -> None:
    result = run("nuclide", "show", "Lu-1777", "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Lu-1777" in result.stderr


def test_negative_activity_exits_2() -> None:
    result = run("nuclide", "decay", "Lu-177", "--activity-mbq", "-5", "--elapsed-h", "1")
    assert result.returncode == 2
    assert "--activity-mbq" in result.stderr
