"""DICOM SR (TID 1500) measurement report: content and validity with dciodvfy (dicom3tools)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest

from theradose.cli import main
from theradose.errors import DicomError, InputError
from theradose.reading.criteria import score_lesions
from theradose.reading.lesions import read_lesion_csv
from theradose.reading.sr import measurement_report

from .conftest import make_pet_dataset

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "reading"


def _values(ds: pydicom.Dataset) -> list[tuple[str, str, float | str]]:
    """(concept meaning, derivation or '', value) of every NUM item and CODE item in the tree."""
    found: list[tuple[str, str, float | str]] = []

    def walk(items: pydicom.Sequence) -> None:
        for item in items:
            if item.ValueType == "NUM":
                derivation = ""
                for child in getattr(item, "ContentSequence", []):
                    if child.ConceptNameCodeSequence[0].CodeMeaning == "Derivation":
                        derivation = child.ConceptCodeSequence[0].CodeMeaning
                value = float(item.MeasuredValueSequence[0].NumericValue)
                found.append((item.ConceptNameCodeSequence[0].CodeMeaning, derivation, value))
            elif item.ValueType == "CODE":
                found.append(
                    (item.ConceptNameCodeSequence[0].CodeMeaning, "", item.ConceptCodeSequence[0].CodeValue)
                )
            walk(getattr(item, "ContentSequence", []))

    walk(ds.ContentSequence)
    return found


def test_sr_content_and_dciodvfy(tmp_path: Path) -> None:
    table = read_lesion_csv(EXAMPLES / "baseline.csv")
    decisions = score_lesions(table, framework="psma-rads")
    ds = measurement_report(table, [make_pet_dataset()], decisions=decisions)
    values = _values(ds)
    # L1 of the example table: SUVmax 28.4, SUVpeak 21.0, volume 6.2 mL, short axis 18 mm, PSMA-RADS-5
    assert ("SUVbw", "Maximum", 28.4) in values
    assert ("SUVbw", "Peak Value Within ROI", 21.0) in values
    assert ("Volume", "", 6.2) in values
    assert ("Short axis", "", 18.0) in values
    assert sum(1 for v in values if v[2] == "PSMA-RADS-5") == 4
    assert ds.PatientID == "READ01"
    path = tmp_path / "sr.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert shutil.which("dciodvfy"), "dciodvfy missing: run scripts/setup-system.sh (Debian dicom3tools)"
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    report = result.stdout + result.stderr
    errors = [line for line in report.splitlines() if line.startswith("Error")]
    assert not errors, report


def test_sr_needs_evidence_and_patient_attributes() -> None:
    table = read_lesion_csv(EXAMPLES / "baseline.csv")
    with pytest.raises(InputError, match="evidence"):
        measurement_report(table, [])
    header = make_pet_dataset()
    del header.PatientBirthDate
    with pytest.raises(DicomError, match="PatientBirthDate"):
        measurement_report(table, [header])


def test_report_cli_writes_sr(
    tmp_path: Path, write_pet: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pet = write_pet()
    out = tmp_path / "read.sr.dcm"
    main(
        ["read", "report", str(EXAMPLES / "sstr.csv"), "-f", "krenning", "--pet", str(pet), "--sr", str(out)]
    )
    ds = pydicom.dcmread(out)
    assert ds.Modality == "SR"
    assert ("SUVbw", "Maximum", 38.0) in _values(ds)
    assert "### SUV conversion" in capsys.readouterr().out


def _dciodvfy_errors(path: Path) -> list[str]:
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]


def test_identity_removed_only_with_its_method(tmp_path: Path) -> None:
    """PS3.3 C.7.1.1: De-identification Method is Type 1C when Patient Identity Removed is YES. A PET
    marked YES without the method (as some anonymisers leave it) does not make the SR invalid: the SR then
    does not claim identity removal; a PET that names its method passes both on."""
    table = read_lesion_csv(EXAMPLES / "baseline.csv")
    header = make_pet_dataset()
    header.PatientIdentityRemoved = "YES"
    ds = measurement_report(table, [header])
    assert "PatientIdentityRemoved" not in ds and "DeidentificationMethod" not in ds
    path = tmp_path / "no-method.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert _dciodvfy_errors(path) == []
    header.DeidentificationMethod = "Basic Application Confidentiality Profile"
    ds = measurement_report(table, [header])
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.DeidentificationMethod == "Basic Application Confidentiality Profile"
    path = tmp_path / "with-method.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert _dciodvfy_errors(path) == []
