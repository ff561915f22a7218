"""Fixtures for the DICOM and mask tests: validation with dciodvfy, patient/administration records."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from theradose.io.dicom import PatientInfo, RadiopharmaceuticalInfo

CET = timezone(timedelta(hours=1))


def _validate(path: Path) -> list[str]:
    """Error lines that dciodvfy (dicom3tools) reports for ``path``; warnings are allowed."""
    executable = shutil.which("dciodvfy")
    if executable is None:
        pytest.fail("dciodvfy is not installed: run scripts/setup-system.sh (Debian package dicom3tools)")
    result = subprocess.run([executable, str(path)], capture_output=True, text=True, check=False)
    lines = (result.stdout + result.stderr).splitlines()
    return [line for line in lines if line.startswith("Error")]


@pytest.fixture
def dciodvfy() -> Callable[[Path], list[str]]:
    """Call with a file path; returns dciodvfy's error lines (empty list = valid)."""
    return _validate


@pytest.fixture
def patient() -> PatientInfo:
    return PatientInfo(name="Test^Patient", patient_id="TD-0001", sex="M", weight_kg=78.5)


@pytest.fixture
def lu177() -> RadiopharmaceuticalInfo:
    return RadiopharmaceuticalInfo(
        nuclide="177Lu",
        radiopharmaceutical="177Lu-PSMA-617",
        injected_activity_mbq=7400.0,
        injection_datetime=datetime(2026, 11, 19, 9, 0, tzinfo=CET),
    )


def _testdata(name: str) -> Path:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.fail(f"{name} is not installed: pip install pydicom-data (the 'test' extra)")
    return Path(str(path))


@pytest.fixture
def testdata() -> Callable[[str], Path]:
    """Call with a file name: a DICOM file made by others and shipped inside the installed pydicom /
    pydicom-data packages (CT_small.dcm, rtdose.dcm, rtstruct.dcm, liver.dcm, ...); never downloaded."""
    return _testdata
