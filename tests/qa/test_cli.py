"""``theradose qa`` CLI contract and bad input."""

import json
from pathlib import Path

import pytest

from cli_runner import run_cli as run


def test_accuracy_log(tmp_path: Path) -> None:
    log = tmp_path / "acc.csv"
    log.write_text(
        "datetime,nuclide,reference_activity_mbq,reference_datetime,measured_mbq\n"
        "2026-01-05T08:00:00Z,Cs-137,100,2026-01-05T08:00:00Z,110\n"
        "2026-01-05T08:00:00Z,Cs-137,100,2026-01-05T08:00:00Z,111\n"
    )
    result = run("qa", "dose-calibrator", str(log), "--test", "accuracy", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert [r["pass"] for r in rows] == [True, False]
    assert rows[1]["deviation_percent"] == pytest.approx(11.0)
    assert "trend" in json.loads(result.stdout)


def test_geometry_and_shield_logs(tmp_path: Path) -> None:
    geo = tmp_path / "geo.csv"
    geo.write_text("container,measured_mbq,reference\n3 mL syringe,100,1\n10 mL vial,94,\n")
    data = json.loads(
        run(
            "qa", "dose-calibrator", str(geo), "--test", "geometry", "--tolerance", "professional", "--json"
        ).stdout
    )
    assert [r["pass"] for r in data["rows"]] == [True, False]
    shield = tmp_path / "lin.csv"
    shield.write_text("measured_mbq,shield_factor\n1000,1\n502,0.5\n")
    data = json.loads(run("qa", "dose-calibrator", str(shield), "--test", "linearity", "--json").stdout)
    assert data["rows"][1]["deviation_percent"] == pytest.approx(0.4)


def test_harmonise_example() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "qa" / "sites.csv"
    result = run("qa", "harmonise", str(example), "--json")
    assert result.returncode == 0, result.stderr
    sites = {s["site"]: s for s in json.loads(result.stdout)["sites"]}
    assert sites["Ghent"]["flag"] and not sites["Lund"]["flag"]
    assert sites["Wuerzburg"]["deviation_percent"] == pytest.approx(1.2)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("datetime,measured_mbq\n2026-01-01T00:00:00Z,1\n", "missing column"),
        (
            "datetime,nuclide,reference_activity_mbq,reference_datetime,measured_mbq\n"
            "2026-01-05T08:00:00,Cs-137,100,2026-01-05T08:00:00Z,100\n",
            "UTC offset",
        ),
        (
            "datetime,nuclide,reference_activity_mbq,reference_datetime,measured_mbq\n"
            "2026-01-05T08:00:00Z,Cs-137,100,2026-01-05T08:00:00Z,abc\n",
            "measured_mbq='abc'",
        ),
    ],
)
def test_bad_log_exits_2(tmp_path: Path, content: str, message: str) -> None:
    log = tmp_path / "bad.csv"
    log.write_text(content)
    result = run("qa", "dose-calibrator", str(log), "--test", "constancy", "--json")
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_unknown_test_exits_2(tmp_path: Path) -> None:
    log = tmp_path / "x.csv"
    log.write_text("a\n1\n")
    result = run("qa", "dose-calibrator", str(log), "--test", "stability")
    assert result.returncode == 2 and "--test" in result.stderr


def test_spect_calibration_bad_input_exits_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run(
        "qa",
        "spect-calibration",
        str(empty),
        "--activity-mbq",
        "500",
        "--reference-time",
        "2026-01-05T08:00:00Z",
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    result = run(
        "qa", "spect-calibration", str(empty), "--activity-mbq", "500", "--reference-time", "yesterday"
    )
    assert result.returncode == 2 and "--reference-time" in result.stderr
    result = run("qa", "recovery", str(empty))
    assert result.returncode == 2 and "Traceback" not in result.stderr
