"""What quantitative reading refuses, and what it reads exactly.

Each refusal is one line naming the tag and the fix: Units BQML without a Rescale Slope (and no Real World
Value Mapping), a zero or negative slope, a missing DecayCorrection (PET, or NM marked DECY), a slice from
another frame of reference, NumberOfFrames 0, a malformed time ("25:61:99"). theradose's own NM files
(Units BQML, Rescale Slope and the same slope as a Real World Value Mapping) read back exactly at any
scale; a file with only the mapping uses the mapping.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import DataElement

from theradose.errors import DicomError
from theradose.imaging import Volume
from theradose.io.dicom import PatientInfo, RadiopharmaceuticalInfo, discover_series, read_series
from theradose.io.dicom.write import write_nm_series, write_pet_series

TZ = timezone(timedelta(hours=1))
T_INJ = datetime(2026, 5, 4, 8, 0, tzinfo=TZ)
T_ACQ = datetime(2026, 5, 5, 8, 0, tzinfo=TZ)
AGENT = RadiopharmaceuticalInfo("Lu-177", "177Lu-DOTATATE", 7400.0, T_INJ)


def _activity(peak_bqml: float) -> Volume:
    rng = np.random.default_rng(7)
    values = rng.uniform(0, peak_bqml, (5, 6, 7))
    return Volume.from_spacing(values, (4.8, 4.8, 4.8), unit="Bq/mL", acquisition_datetime=T_ACQ)


def _raw(ds: pydicom.Dataset, keyword: str, value: str) -> None:
    """Store a value as it is, without pydicom's check (a damaged file)."""
    tag = pydicom.datadict.tag_for_keyword(keyword)
    vr = pydicom.datadict.dictionary_VR(tag)
    ds[tag] = DataElement(tag, vr, value, validation_mode=pydicom.config.IGNORE)


@pytest.mark.parametrize("peak_bqml", [3.0e4, 1.2e7, 4.0e9])
def test_own_nm_reads_back_exactly(tmp_path: Path, peak_bqml: float) -> None:
    """The slope theradose writes (here up to 6·10⁴) is honoured: values within one stored step."""
    volume = _activity(peak_bqml)
    path = write_nm_series(volume, tmp_path, patient=PatientInfo(), radiopharmaceutical=AGENT)
    ds = pydicom.dcmread(path)
    slope = float(ds.RescaleSlope)
    assert slope == pytest.approx(volume.array.max() / 65535, rel=1e-6)  # the largest value / 65535
    back = read_series(path)
    assert np.max(np.abs(back.array - volume.array)) <= slope / 2 * 1.001 + 1e-6 * peak_bqml


def test_bqml_slope_rules(tmp_path: Path) -> None:
    path = write_nm_series(
        _activity(1.2e7), tmp_path / "nm", patient=PatientInfo(), radiopharmaceutical=AGENT
    )
    truth = read_series(path).array
    ds = pydicom.dcmread(path)

    def variant(name: str, edit) -> Path:
        copy = pydicom.dcmread(path)
        edit(copy)
        out = tmp_path / name / "NM.dcm"
        out.parent.mkdir()
        copy.save_as(out)
        return out

    # Rescale Slope missing: the Real World Value Mapping to Bq/ml gives the same values
    only_mapping = variant("mapping", lambda d: delattr(d, "RescaleSlope"))
    np.testing.assert_allclose(read_series(only_mapping).array, truth, rtol=1e-6)
    # neither: refused, naming the tag
    neither = variant(
        "neither", lambda d: (delattr(d, "RescaleSlope"), delattr(d, "RealWorldValueMappingSequence"))
    )
    with pytest.raises(DicomError, match=r"Units BQML but no RescaleSlope \(0028,1053\)"):
        read_series(neither)
    for value in ("0", "-1.5"):
        bad = variant(f"slope{value}", lambda d, v=value: _raw(d, "RescaleSlope", v))
        with pytest.raises(
            DicomError, match=r"RescaleSlope \(0028,1053\) is -?[0-9.]+; Units BQML needs a positive"
        ):
            read_series(bad)
    # slope and mapping that disagree: ambiguous, refused
    other = variant(
        "disagree", lambda d: setattr(d.RealWorldValueMappingSequence[0], "RealWorldValueSlope", 2.0)
    )
    with pytest.raises(DicomError, match="disagree"):
        read_series(other)
    assert float(ds.RescaleSlope) > 0


def test_pet_without_slope_or_decay_correction_is_refused(tmp_path: Path) -> None:
    files = write_pet_series(
        _activity(2e4),
        tmp_path / "pet",
        patient=PatientInfo(),
        radiopharmaceutical=AGENT,
        frame_duration_s=120.0,
    )
    assert read_series(tmp_path / "pet").unit == "Bq/mL"

    def damaged(name: str, edit) -> Path:
        folder = tmp_path / name
        shutil.copytree(tmp_path / "pet", folder)
        for file in sorted(folder.iterdir()):
            ds = pydicom.dcmread(file)
            edit(ds)
            ds.save_as(file)
        return folder

    with pytest.raises(DicomError, match=r"lacks DecayCorrection \(0054,1102\)"):
        read_series(damaged("no-decay", lambda d: delattr(d, "DecayCorrection")))
    with pytest.raises(DicomError, match=r"Units BQML but no RescaleSlope"):
        read_series(damaged("no-slope", lambda d: delattr(d, "RescaleSlope")))
    # one slice from another frame of reference
    foreign = damaged("foreign", lambda d: None)
    first = sorted(foreign.iterdir())[1]
    ds = pydicom.dcmread(first)
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.999"
    ds.save_as(first)
    with pytest.raises(DicomError, match="mixes 2 frames of reference"):
        read_series(foreign)
    assert len(files) == 5


def test_nm_decay_corrected_without_decay_correction_and_zero_frames(tmp_path: Path) -> None:
    path = write_nm_series(_activity(1e5), tmp_path / "nm", patient=PatientInfo(), radiopharmaceutical=AGENT)
    ds = pydicom.dcmread(path)
    assert ds.CorrectedImage == "DECY"
    del ds.DecayCorrection
    ds.save_as(tmp_path / "nm" / "NM_0001.dcm")
    with pytest.raises(DicomError, match=r"holds DECY\) but lacks DecayCorrection"):
        read_series(path)
    ds = pydicom.dcmread(
        write_nm_series(_activity(1e5), tmp_path / "z", patient=PatientInfo(), radiopharmaceutical=AGENT)
    )
    ds.NumberOfFrames = 0
    ds.save_as(tmp_path / "z" / "NM_0001.dcm")
    with pytest.raises(DicomError, match=r"NumberOfFrames \(0028,0008\) is 0"):
        read_series(tmp_path / "z" / "NM_0001.dcm")


def test_malformed_time_is_one_line_with_the_tag(tmp_path: Path) -> None:
    path = write_nm_series(_activity(1e5), tmp_path / "nm", patient=PatientInfo(), radiopharmaceutical=AGENT)
    ds = pydicom.dcmread(path)
    _raw(ds, "AcquisitionTime", "25:61:99")
    ds.save_as(path)
    with pytest.raises(
        DicomError, match=r"AcquisitionTime \(0008,0032\) is '25:61:99', not a valid DICOM time"
    ):
        read_series(path)
    (series,) = discover_series(tmp_path / "nm")  # inspection goes on and names the problem
    assert "AcquisitionTime (0008,0032)" in (series.problem or "")


def test_whole_body_nm_keeps_nuclide_and_activity_without_injection_time(tmp_path: Path) -> None:
    path = write_nm_series(_activity(1e5), tmp_path / "wb", patient=PatientInfo(), radiopharmaceutical=AGENT)
    ds = pydicom.dcmread(path)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "WHOLE BODY", "EMISSION"]
    item = ds.RadiopharmaceuticalInformationSequence[0]
    del item.RadiopharmaceuticalStartDateTime
    del item.RadiopharmaceuticalStartTime
    ds.save_as(path)
    (series,) = discover_series(tmp_path / "wb")
    assert series.nuclide == "Lu-177" and series.injected_activity_mbq == 7400.0
