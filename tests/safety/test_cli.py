"""``theradose safety`` CLI contract."""

import json
from pathlib import Path

from cli_runner import run_cli as run

LABS = """date,test,value,unit,cycle
2026-01-05,hemoglobin,13.9,g/dL,1
2026-01-05,platelets,210,10^9/L,1
2026-01-05,creatinine,79.6,µmol/L,1
2026-02-16,hemoglobin,11.2,g/dL,2
2026-02-16,platelets,62000,/mm3,2
2026-02-16,creatinine,0.95,mg/dL,2
2026-02-16,psa,30,ng/mL,2
2026-03-30,psa,12,ng/mL,3
2026-05-11,psa,9,ng/mL,4
"""


def test_grade_json(tmp_path: Path) -> None:
    path = tmp_path / "labs.csv"
    path.write_text(LABS)
    result = run("safety", "grade", str(path), "--sex", "male", "--age", "68", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    rows = data["rows"]
    assert {"grade", "rule"} <= set(rows[0])
    platelets = [r for r in rows if r["test"] == "platelets"]
    assert [r["grade"] for r in platelets] == [0, 2]
    assert data["worst_by_cycle"]["2"]["platelets"] == 2
    creat = next(r for r in rows if r["test"] == "creatinine")
    assert abs(creat["value"] - 0.9) < 0.001 and "egfr_ckd_epi_2021" in creat


def test_check_cycle_json(tmp_path: Path) -> None:
    path = tmp_path / "labs.csv"
    path.write_text(LABS)
    result = run("safety", "check-cycle", str(path), "--protocol", "psma", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["decision"] == "delay"
    assert any("myelosuppression" in r for r in data["reasons"])


def test_psa_plot(tmp_path: Path) -> None:
    path = tmp_path / "labs.csv"
    path.write_text(LABS)
    png = tmp_path / "psa.png"
    result = run("safety", "psa", str(path), "--plot", str(png), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["category"] == "response"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_rows_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "labs.csv"
    path.write_text("date,test,value,unit\n2026-01-05,hemoglobin,-3,g/dL\n")
    result = run("safety", "grade", str(path))
    assert result.returncode == 2 and "row 1" in result.stderr and "negative" in result.stderr
    path.write_text("date,test,value,unit\n2026-01-05,hemoglobin,12,\n")
    result = run("safety", "grade", str(path))
    assert result.returncode == 2 and "unit is missing" in result.stderr
    assert "Traceback" not in result.stderr
