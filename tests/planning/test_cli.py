"""``theradose plan`` CLI contract: JSON keys, exit code 2 with one line on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_runner import run_cli as run
from theradose.cli import main
from theradose.planning.protocols import PROTOCOL_DIR


def call(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def _dose_only_protocol(tmp_path: Path) -> Path:
    """DOTATATE protocol without BED limits and tumour radiobiology (absorbed-dose limits only)."""
    text = (PROTOCOL_DIR / "dotatate.toml").read_text(encoding="utf-8")
    kept = [
        line
        for line in text.splitlines()
        if not line.startswith(("bed_limit", "risk_factors", "alpha_beta_gy", "repair_half_time_h"))
    ]
    path = tmp_path / "dose_only.toml"
    path.write_text("\n".join(kept) + "\n")
    return path


def test_next_cycle_json_contract(tmp_path: Path) -> None:
    _dose_only_protocol(tmp_path)
    (tmp_path / "PLAN.toml").write_text(
        'protocol = "dose_only.toml"\n[[cycles]]\nadministered_activity_mbq = 7400\n'
        'regions = [{ name = "kidneys", dose_gy_per_gbq = 1.5, dose_sigma_gy_per_gbq = 0.15 },'
        ' { name = "lesion", kind = "tumour", dose_gy_per_gbq = 5.0, dose_sigma_gy_per_gbq = 1.0 }]\n'
    )
    result = run("plan", "next-cycle", str(tmp_path / "PLAN.toml"), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("recommended_activity_mbq", "limiting_organ", "projected", "tumour", "stop", "reasons"):
        assert key in data
    # (23 − 11.1) Gy / (1.5 + 1.644854 × 0.15) Gy/GBq = 6.8127 GBq
    assert data["recommended_activity_mbq"] == pytest.approx(6812.7, abs=0.5)
    assert data["limiting_organ"] == "kidneys"
    kidneys = data["projected"]["kidneys"]
    assert {"cumulative_bed_gy", "limit_bed_gy", "cumulative_dose_gy"} <= set(kidneys)
    assert kidneys["cumulative_bed_gy"] is None and kidneys["limit_bed_gy"] is None
    assert kidneys["cumulative_dose_gy"] == pytest.approx(11.1 + 1.5 * 6.8127, abs=1e-3)
    assert "expected_bed_gy" in data["tumour"]["lesion"]
    assert data["stop"] is False and isinstance(data["reasons"], list)


def test_next_cycle_human_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _dose_only_protocol(tmp_path)
    (tmp_path / "PLAN.toml").write_text(
        'protocol = "dose_only.toml"\n[[cycles]]\nadministered_activity_mbq = 7400\n'
        'regions = [{ name = "kidneys", dose_gy_per_gbq = 1.6, dose_sigma_gy_per_gbq = 0.1 }]\n'
        "[[cycles]]\nadministered_activity_mbq = 7400\n"
        'regions = [{ name = "kidneys", dose_gy_per_gbq = 1.6, dose_sigma_gy_per_gbq = 0.1 }]\n'
    )
    code, out, _ = call(capsys, "plan", "next-cycle", str(tmp_path / "PLAN.toml"))
    assert code == 0
    assert "has reached the limit 23 Gy" in out


def test_next_cycle_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = call(capsys, "plan", "next-cycle", str(tmp_path / "nope.toml"), "--json")
    assert code == 2 and out == ""
    assert err.startswith("error: plan file") and err.count("\n") == 1


def test_check_dosage_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call(
        capsys, "plan", "check-dosage", "--prescribed-mbq", "7400", "--measured-mbq", "8880.74", "--json"
    )
    assert code == 0
    data = json.loads(out)
    assert data["ok"] is False
    assert data["deviation_percent"] == pytest.approx(20.01, abs=1e-12)
    assert "10 CFR 35.63(d)" in data["rule"]
    code, out, _ = call(
        capsys, "plan", "check-dosage", "--prescribed-mbq", "7400", "--measured-mbq", "8880", "--json"
    )
    assert json.loads(out)["ok"] is True


def test_check_dosage_bad_input_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = call(
        capsys, "plan", "check-dosage", "--prescribed-mbq", "0", "--measured-mbq", "1", "--json"
    )
    assert code == 2 and "prescribed_mbq must be > 0" in err


def test_release_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call(
        capsys,
        "plan",
        "release",
        "--nuclide",
        "177Lu",
        "--activity-mbq",
        "5000",
        "--dose-rate-usv-h-at-1m",
        "20",
        "--effective-half-life-h",
        "60",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert data["releasable"] is True and data["instructions_required"] is False
    assert data["dose_to_others_msv"] == pytest.approx(0.4325, rel=1e-12)
    assert {r["scenario"] for r in data["restrictions"]} == {"partner", "child", "work"}


def test_release_unknown_nuclide_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = call(capsys, "plan", "release", "--nuclide", "Lu-999", "--activity-mbq", "1", "--json")
    assert code == 2 and out == "" and err.startswith("error:")


def test_plan_is_registered() -> None:
    from theradose.cli import COMMANDS

    assert COMMANDS["plan"][0] == "theradose.cli.plan"
