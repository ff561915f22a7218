"""`theradose radiobiology bed` contract: JSON keys, values, exit code 2 on bad input."""

from __future__ import annotations

import json

import pytest

from cli_runner import run_cli as run_process
from cli_runner import run_in_process as run


def test_bed_json_contract() -> None:
    result = run_process(
        "radiobiology", "bed", "--dose-gy", "20", "--effective-half-life-h", "50",
        "--alpha-beta-gy", "2.6", "--repair-half-time-h", "2.8", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["bed_gy"] == pytest.approx(28.1585, rel=1e-5)  # hand calculation in test_bed.py
    assert data["eqd2_gy"] == pytest.approx(15.9157, rel=1e-4)


def test_bed_with_uptake_and_tissue_default() -> None:
    result = run(
        "radiobiology", "bed", "--dose-gy", "20", "--effective-half-life-h", "50",
        "--uptake-half-life-h", "2", "--tissue", "kidney", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["alpha_beta_gy"] == 2.6
    assert 20.0 < data["bed_gy"] < 28.1585


def test_human_table() -> None:
    result = run(
        "radiobiology", "bed", "--dose-gy", "5", "--effective-half-life-h", "40", "--tissue", "liver"
    )
    assert result.returncode == 0
    assert "bed_gy" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("--dose-gy", "-1", "--effective-half-life-h", "40", "--tissue", "kidney"),
        ("--dose-gy", "5", "--effective-half-life-h", "40"),
        ("--dose-gy", "5", "--effective-half-life-h", "40", "--tissue", "brain"),
        ("--dose-gy", "5", "--effective-half-life-h", "4", "--uptake-half-life-h", "8", "--tissue", "kidney"),
    ],
)
def test_bad_input_exits_2(args: tuple[str, ...]) -> None:
    result = run("radiobiology", "bed", *args, "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_bed_sigma_option() -> None:
    result = run(
        "radiobiology", "bed", "--dose-gy", "20", "--dose-sigma-gy", "2", "--effective-half-life-h", "50",
        "--tissue", "kidney", "--json",
    )  # fmt: skip
    data = json.loads(result.stdout)
    assert data["bed_sigma_gy"] == pytest.approx(3.6317, rel=1e-4)  # hand value in test_bed.py
    assert data["eqd2_sigma_gy"] == pytest.approx(3.6317 / (1 + 2 / 2.6), rel=1e-4)
