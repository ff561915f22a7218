"""Structured output: JSON mapping and Markdown summary of a PET read."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from theradose.cli import main
from theradose.cli._output import to_json
from theradose.reading.criteria import eligibility, score_lesions
from theradose.reading.lesions import read_lesion_csv
from theradose.reading.report import ReadingReport
from theradose.reading.response import assess_response
from theradose.reading.suv import suv_scale

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "reading"


def test_report_json_and_markdown(write_pet: Callable[..., Path]) -> None:
    base = read_lesion_csv(EXAMPLES / "baseline.csv")
    fu = read_lesion_csv(EXAMPLES / "followup.csv")
    report = ReadingReport(
        lesions=base,
        suv=suv_scale(write_pet()),
        scores={"krenning": score_lesions(base, framework="krenning")},
        eligibility=[eligibility(base, trial="vision")],
        responses=[assess_response(base, fu, criteria="recip")],
    )
    data = json.loads(to_json(report.to_dict()))
    assert data["suv"]["suv_bw_scale"] == pytest.approx(2.763367e-4, rel=1e-5)
    # L1 SUVmax 28.4 > spleen 7.9 -> Krenning 4 (Kwekkeboom & Krenning 2002)
    assert data["scores"]["krenning"][0]["category"] == "4"
    assert data["eligibility"][0]["eligible"] is True
    assert data["responses"][0]["category"] == "PR"
    assert data["references"]["liver"]["suv_mean"] == 5.6
    md = report.to_markdown()
    assert "### SUV conversion" in md
    assert "| L1 | 4 | Krenning 4:" in md
    assert "### Eligibility: vision — eligible" in md
    assert "### Response: RECIP 1.0 — PR" in md


def test_report_cli(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "read",
        "report",
        str(EXAMPLES / "baseline.csv"),
        "--followup",
        str(EXAMPLES / "followup.csv"),
        "-f",
        "psma-rads",
        "-t",
        "therap",
        "-c",
        "recist",
    ]
    assert main(args) in (None, 0)
    out = capsys.readouterr().out
    assert "### Response: RECIST 1.1 — PR" in out
    with pytest.raises(SystemExit) as info:
        main(["read", "report", str(EXAMPLES / "baseline.csv"), "-c", "recist"])
    assert info.value.code == 2
    assert "--followup" in capsys.readouterr().err
