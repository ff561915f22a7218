"""``theradose read``: the JSON contract of suv / score / eligibility / response and exit 2 on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from theradose.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "reading"


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_suv_json_contract(write_pet: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = write_pet()
    code, out, _ = run_main(["read", "suv", str(path), "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    # 70 kg, 3.7e8 Bq, 3600 s of F-18 decay: 2.763367e-4 g/Bq (hand calculation in test_suv.py)
    assert data["suv_bw_scale"] == pytest.approx(2.763367e-4, rel=1e-5)
    assert data["sul_scale"] == pytest.approx(2.763367e-4 * 55.8571 / 70.0, rel=1e-5)
    assert data["reference_time"] == "2026-03-15T09:00:00"
    assert "SeriesDateTime" in data["method"]


def test_suv_bad_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.dcm"
    bad.write_bytes(b"not dicom at all")
    code, out, err = run_main(["read", "suv", str(bad), "--json"], capsys)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1


def test_score_json_per_lesion(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(
        ["read", "score", str(EXAMPLES / "baseline.csv"), "-f", "psma-rads", "--json"], capsys
    )
    assert code == 0
    lesions = json.loads(out)["lesions"]
    assert [d["lesion_id"] for d in lesions] == ["L1", "L2", "L3", "L4"]
    # every example lesion: intense uptake, typical site, anatomic correlate -> PSMA-RADS-5 (Rowe 2018)
    assert {d["category"] for d in lesions} == {"PSMA-RADS-5"}
    assert all(d["rule"] for d in lesions)


def test_score_krenning_with_reference_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(
        ["read", "score", str(EXAMPLES / "sstr.csv"), "-f", "krenning", "--spleen-suv", "30", "--json"],
        capsys,
    )
    assert code == 0
    # N1 38 > spleen 30 -> 4; N2 19.5 > liver 7.1 -> 3; N3 9.0 > liver -> 3
    assert [d["category"] for d in json.loads(out)["lesions"]] == ["4", "3", "3"]


def test_eligibility_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(
        ["read", "eligibility", str(EXAMPLES / "baseline.csv"), "--trial", "vision", "--json"], capsys
    )
    assert code == 0
    data = json.loads(out)
    assert data["eligible"] is True
    assert isinstance(data["reasons"], list) and data["reasons"]
    code, out, _ = run_main(
        ["read", "eligibility", str(EXAMPLES / "sstr.csv"), "-t", "netter1", "--json"], capsys
    )
    assert json.loads(out)["eligible"] is True


def test_response_json(capsys: pytest.CaptureFixture[str]) -> None:
    base, fu = str(EXAMPLES / "baseline.csv"), str(EXAMPLES / "followup.csv")
    code, out, _ = run_main(["read", "response", base, fu, "--criteria", "recist", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    # targets L1 (node 18), L2 (node 16), L4 (liver 20) = 54 mm -> 11 + 8 + 11 = 30 mm: -44 % -> PR
    assert data["category"] == "PR"
    assert data["details"]["baseline_sum_mm"] == 54.0
    assert data["details"]["followup_sum_mm"] == 30.0
    code, out, _ = run_main(["read", "response", base, fu, "-c", "recip", "--json"], capsys)
    # PSMA-VOL 22.7 mL -> 8.1 mL: -64 % without new lesions -> PR
    assert json.loads(out)["category"] == "PR"
    code, out, _ = run_main(["read", "response", base, fu, "-c", "percist", "--json"], capsys)
    # hottest SULpeak 9.5 -> 4.2 (-56 %, -5.3) -> PMR
    assert json.loads(out)["category"] == "PMR"


@pytest.mark.parametrize(
    "content",
    [
        "lesion_id,suv_max\nA,twelve\n",  # not a number
        "site,suv_max\nx,3\n",  # no lesion_id column
        "lesion_id,suv_max\nA,3\nA,4\n",  # duplicate id
        "lesion_id,colour\nA,red\n",  # unknown column
        "lesion_id,suv_max\nA,3,4\n",  # too many fields
        "",  # empty file
        "lesion_id,tissue\nA,brain\n",  # unknown tissue
    ],
)
def test_bad_csv_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, out, err = run_main(["read", "score", str(path), "-f", "krenning", "--json"], capsys)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1


def test_missing_csv_and_bad_option_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(["read", "eligibility", str(tmp_path / "none.csv"), "-t", "vision"], capsys)
    assert code == 2 and "does not exist" in err
    code, _, err = run_main(["read", "eligibility", str(EXAMPLES / "baseline.csv"), "-t", "who"], capsys)
    assert code == 2 and "--trial" in err


def test_subprocess_json_only_on_stdout() -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "theradose",
            "read",
            "response",
            str(EXAMPLES / "baseline.csv"),
            str(EXAMPLES / "followup.csv"),
            "--criteria",
            "ppp",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["category"] == "no PPP"
