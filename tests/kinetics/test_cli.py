"""``theradose kinetics fit|stp``: the JSON contract and exit code 2 with one line for bad input."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from theradose.cli import main

FIT_KEYS = [
    "model",
    "parameters",
    "parameter_sigmas",
    "parameter_cv",
    "max_abs_correlation",
    "tia_mbq_h",
    "tia_sigma_mbq_h",
    "tia_sigma_scaled_mbq_h",
    "effective_half_life_h",
    "effective_half_life_sigma_h",
    "selection_criterion",
    "aicc",
    "chi_square",
    "dof",
    "p_value",
    "flags",
    "notes",
    "prior",
    "candidates",
]
CANDIDATE_KEYS = [
    "model",
    "n_parameters",
    "aicc",
    "aic",
    "criterion",
    "weight",
    "chi_square",
    "dof",
    "p_value",
    "max_cv",
    "max_abs_correlation",
    "tia_mbq_h",
    "ranked",
    "reason_not_ranked",
]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def bi_csv(tmp_path: Path) -> Path:
    t = np.array([1.0, 4.0, 24.0, 48.0, 96.0, 168.0])
    a = 1000.0 * (np.exp(-0.01 * t) - np.exp(-0.5 * t))
    rows = "\n".join(f"{ti},{ai},{0.05 * ai}" for ti, ai in zip(t, a, strict=True))
    return write_csv(tmp_path / "kidney.csv", "time_h,activity_mbq,sigma_mbq\n" + rows + "\n")


def test_fit_json_contract(bi_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["kinetics", "fit", str(bi_csv), "--nuclide", "Lu-177", "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert list(data) == FIT_KEYS
    assert data["model"] == "bi"
    assert set(data["parameters"]) == {"a1_mbq", "lambda1_per_h", "lambda2_per_h"}
    assert data["tia_mbq_h"] == pytest.approx(98000.0, rel=1e-6)  # 1000·(1/0.01 − 1/0.5), noiseless
    assert data["tia_sigma_mbq_h"] > 0
    assert data["effective_half_life_h"] == pytest.approx(math.log(2) / 0.01, rel=1e-6)
    names = [c["model"] for c in data["candidates"]]
    assert names == [
        "physical",
        "mono",
        "bi_physical",
        "bi",
        "mono_physical",
        "bi_washout",
        "tri_physical",
        "tri",
    ]
    assert all(list(c) == CANDIDATE_KEYS for c in data["candidates"])
    assert sum(c["weight"] for c in data["candidates"]) == pytest.approx(1.0)
    tri = data["candidates"][-1]
    assert tri["aicc"] is None and not tri["ranked"] and tri["reason_not_ranked"]
    # Every candidate that was not ranked says why; sigma and the goodness of fit are reported.
    assert all(c["reason_not_ranked"] for c in data["candidates"] if not c["ranked"])
    assert data["selection_criterion"] in ("AICc", "AIC") and data["p_value"] is not None
    assert isinstance(data["flags"], list) and isinstance(data["notes"], list)


def test_fit_explicit_model_and_trapezoid(bi_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["kinetics", "fit", str(bi_csv), "--model", "mono", "--json"], capsys)
    assert code == 0
    assert json.loads(out)["model"] == "mono"
    code, out, _ = run_cli(
        ["kinetics", "fit", str(bi_csv), "--model", "trapezoid", "--nuclide", "lu177", "--json"], capsys
    )
    assert code == 0
    data = json.loads(out)
    assert data["model"] == "trapezoid"
    assert data["effective_half_life_h"] is None
    assert [(c["model"], c["aicc"], c["weight"]) for c in data["candidates"]] == [("trapezoid", None, 1.0)]


def test_fit_table_output(bi_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["kinetics", "fit", str(bi_csv)], capsys)
    assert code == 0
    assert "tia_mbq_h" in out and "lambda2_per_h" in out and "candidates" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ("time_h,activity\n1,2\n", [], "no column 'activity_mbq'"),
        ("time_h,activity_mbq\n1,2\n4,x\n", [], "column activity_mbq has non-numeric value 'x'"),
        ("time_h,activity_mbq\n24,2\n4,1\n", [], "time_h must be strictly increasing"),
        ("time_h,activity_mbq\n4,2\n24,-1\n", [], "activity_mbq must be >= 0"),
        (
            "time_h,activity_mbq\n4,2\n24,1\n",
            ["--model", "bi"],
            "has 2 points but model 'bi' has 3 parameters",
        ),
        ("time_h,activity_mbq\n4,2\n24,3\n48,4\n96,5\n", ["--model", "mono"], "growing or flat tail"),
        ("time_h,activity_mbq\n4,2\n24,1\n", ["--nuclide", "Xx-999"], "Xx-999"),
    ],
)
def test_fit_bad_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, extra: list[str], message: str
) -> None:
    path = write_csv(tmp_path / "tac.csv", content)
    code, out, err = run_cli(["kinetics", "fit", str(path), *extra, "--json"], capsys)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_fit_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["kinetics", "fit", str(tmp_path / "none.csv"), "--json"], capsys)
    assert code == 2 and "does not exist" in err


def test_fit_unknown_model_is_a_usage_error(bi_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["kinetics", "fit", str(bi_csv), "--model", "quad", "--json"], capsys)
    assert code == 2 and "quad" in err and "Traceback" not in err


def test_stp_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        ["kinetics", "stp", "--method", "hanscheid", "--time-h", "96", "--activity-mbq", "100", "--json"],
        capsys,
    )
    assert code == 0
    data = json.loads(out)
    assert data["tia_mbq_h"] == pytest.approx(100 * 2 * 96 / math.log(2))  # Hänscheid 2018
    assert data["method"] == "hanscheid" and data["flags"] == [] and data["tia_sigma_mbq_h"] is None
    args = ["kinetics", "stp", "--method", "madsen", "--time-h", "96", "--activity-mbq", "100"]
    code, out, _ = run_cli([*args, "--effective-half-life-h", "60", "--json"], capsys)
    assert code == 0
    assert json.loads(out)["tia_mbq_h"] == pytest.approx(26240.6, abs=0.1)  # Madsen 2018, hand value
    code, out, _ = run_cli([*args, "--effective-half-life-h", "60"], capsys)
    assert code == 0 and "tia_mbq_h" in out


def test_stp_with_individual_half_life_and_window_warning(capsys: pytest.CaptureFixture[str]) -> None:
    """The patient's own half-life with its σ: hand values of test_stp (26240.6 ± 1342.9 MBq·h); a
    half-life of 30 h puts the 96 h scan at 3.2 half-lives: a warning and a flag."""
    args = ["kinetics", "stp", "--method", "madsen", "--time-h", "96", "--activity-mbq", "100"]
    extra = [
        "--effective-half-life-h",
        "60",
        "--effective-half-life-sigma-h",
        "6",
        "--activity-sigma-mbq",
        "5",
    ]
    code, out, _ = run_cli([*args, *extra, "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["tia_mbq_h"] == pytest.approx(26240.6, abs=0.1)
    assert data["tia_sigma_mbq_h"] == pytest.approx(1342.9, abs=0.5)
    code, out, _ = run_cli([*args, "--effective-half-life-h", "30"], capsys)
    assert code == 0 and "warning: scan at 96 h is 3.20 effective half-lives" in out
    code, out, _ = run_cli([*args, "--effective-half-life-h", "30", "--json"], capsys)
    assert json.loads(out)["flags"] == ["stp_time_outside_window"]


def test_fit_with_priors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = write_csv(tmp_path / "two.csv", "time_h,activity_mbq,sigma_mbq\n24,10,0.5\n96,4,0.2\n")
    base = ["kinetics", "fit", str(csv), "--nuclide", "Lu-177", "--json"]
    code, out, err = run_cli([*base, "--prior", "psma/kidneys"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert "prior_used" in data["flags"] and data["prior"]["median_h"] == 35.5
    code, out, err = run_cli([*base, "--prior-half-life-h", "40", "--prior-sigma-h", "4"], capsys)
    assert code == 0, err
    assert json.loads(out)["prior"]["log_sigma"] == pytest.approx(0.1)
    code, out, err = run_cli([*base, "--prior", "dotatate/kidneys"], capsys)
    assert code == 2 and "no population half-life prior" in err and err.count("\n") == 1
    code, out, err = run_cli([*base, "--prior-half-life-h", "40"], capsys)
    assert code == 2 and "needs --prior-sigma-h" in err


def test_stp_madsen_without_half_life_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["kinetics", "stp", "--method", "madsen", "--time-h", "96", "--activity-mbq", "100", "--json"]
    code, out, err = run_cli(args, capsys)
    assert code == 2 and out == ""
    assert "needs effective_half_life_h" in err and err.count("\n") == 1


def test_subprocess_entry_point(bi_csv: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    command = [sys.executable, "-m", "theradose", "kinetics", "fit", str(bi_csv), "--json"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert list(json.loads(result.stdout)) == FIT_KEYS
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "theradose",
            "kinetics",
            "stp",
            "--method",
            "hanscheid",
            "--time-h",
            "-1",
            "--activity-mbq",
            "5",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: time_h") and "Traceback" not in bad.stderr


def test_shipped_example_fits(capsys: pytest.CaptureFixture[str]) -> None:
    """The synthetic example was made from 1000·(e^-0.01t − e^-0.5t): TIA 98000 MBq·h by hand."""
    example = Path(__file__).resolve().parents[2] / "examples" / "kinetics" / "kidney_tac.csv"
    code, out, _ = run_cli(["kinetics", "fit", str(example), "--nuclide", "Lu-177", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["model"] == "bi"
    assert abs(data["tia_mbq_h"] - 98000.0) < 2 * data["tia_sigma_mbq_h"]


def test_the_cli_model_choices_are_the_core_ones() -> None:
    """The CLI spells its choices out (``--help`` must not import the kinetics core); they must stay the
    core's."""
    from typing import get_args

    from theradose.cli.kinetics import ModelChoice as CliChoice
    from theradose.kinetics.fit import ModelChoice

    def names(choice: object) -> set[str]:
        out: set[str] = set()
        for arg in get_args(choice):
            out |= names(arg) if get_args(arg) else {arg}
        return out

    assert set(get_args(CliChoice)) == names(ModelChoice)
