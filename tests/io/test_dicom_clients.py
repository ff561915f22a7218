"""Real clients read what theradose writes: dciodvfy (dicom3tools), dcmdump and dsrdump (dcmtk),
OpenREM's RRDSR extraction logic, highdicom, plastimatch and SimpleITK.

Every object type theradose writes (CT, NM in Bq/mL and calibrated counts, PET, RT Dose in 32 and 16 bit,
RTSTRUCT, SEG, RRDSR, TID 1500 SR) is validated with dciodvfy (0 errors) and parsed by dcmdump; the SRs by
dsrdump. dicom3tools (2022) aborts on any 32-bit pixel data, so the 32-bit RT Dose is validated with its
pixels re-encoded in 16 bits, every other attribute unchanged (docs/imaging.md).
"""

from __future__ import annotations

import math
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from theradose.imaging import Volume
from theradose.imaging.resample import resample
from theradose.io.dicom import PatientInfo, RadiopharmaceuticalInfo, read_series
from theradose.io.dicom.write import write_ct_series, write_nm_series, write_pet_series, write_rtdose
from theradose.io.masks import read_seg, write_rtstruct, write_seg
from theradose.service.rrdsr import AdministrationReport, write_rrdsr_bytes

pytestmark = pytest.mark.dciodvfy

FRAME = "1.2.826.0.1.3680043.8.498.2201"
STUDY = "1.2.826.0.1.3680043.8.498.2202"
# calendar: the dates in this file are data (writer/reader round trips); nothing here reads the clock.
T_INJECTION = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
T_SCAN = T_INJECTION + timedelta(hours=24)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: run scripts/setup-system.sh (Debian dicom3tools, dcmtk, plastimatch)")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=False, timeout=120)


@dataclass
class Written:
    ct: Volume
    ct_files: list[Path]
    dose: Volume
    ring: np.ndarray
    objects: dict[str, Path]


def _ring(shape: tuple[int, int, int]) -> np.ndarray:
    k, j, i = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    r2 = (j - 11.5) ** 2 + (i - 9.5) ** 2
    return (r2 <= 64) & (r2 >= 9) & (k >= 1) & (k <= 4)  # a ring: its hole is 3 voxels across


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Written:
    from theradose.reading.lesions import read_lesion_csv
    from theradose.reading.sr import measurement_report

    root = tmp_path_factory.mktemp("clients")
    rng = np.random.default_rng(2201)
    patient = PatientInfo(name="Client^Test", patient_id="CLIENT-1", sex="M", weight_kg=80.0)
    agent = RadiopharmaceuticalInfo("Lu-177", "177Lu-PSMA-617", 7400.0, T_INJECTION)
    geometry: dict[str, Any] = dict(
        spacing_mm=(3.0, 2.0, 2.0), origin_mm=(-19.0, -23.0, 5.0), frame_uid=FRAME
    )
    ct = Volume.from_spacing(np.round(rng.uniform(-200, 300, (6, 24, 20))), unit="HU", **geometry)
    ct_files = write_ct_series(ct, root / "ct", patient=patient, study_uid=STUDY)
    spect = Volume.from_spacing(
        rng.uniform(0, 3e5, ct.shape), unit="Bq/mL", acquisition_datetime=T_SCAN, **geometry
    )
    objects: dict[str, Path] = {"CT": ct_files[2]}
    objects["NM (Bq/mL)"] = write_nm_series(
        spect, root / "nm", patient=patient, radiopharmaceutical=agent, study_uid=STUDY
    )
    counts = spect.with_array(np.round(rng.uniform(0, 500, ct.shape)), unit="counts")
    objects["NM (counts, calibrated)"] = write_nm_series(
        counts,
        root / "nm-counts",
        patient=patient,
        radiopharmaceutical=agent,
        study_uid=STUDY,
        frame_duration_s=20.0,
        n_projections=60,
        energy_windows_kev=[(187.2, 228.8)],
        calibration_cps_per_mbq=9.6,
    )
    objects["PET"] = write_pet_series(
        spect, root / "pet", patient=patient, radiopharmaceutical=agent, frame_duration_s=180.0
    )[1]
    dose = ct.with_array(rng.uniform(0, 25, ct.shape), unit="Gy")
    objects["RT Dose (32 bit)"] = write_rtdose(dose, root / "dose32.dcm", reference_files=ct_files)
    objects["RT Dose (16 bit)"] = write_rtdose(dose, root / "dose16.dcm", reference_files=ct_files, bits=16)
    ring = _ring(ct.shape)
    box = np.zeros(ct.shape, bool)
    box[2, 2:6, 14:18] = True
    masks = {"bone": ct.with_array(ring, unit="label"), "kidney_left": ct.with_array(box, unit="label")}
    objects["RTSTRUCT"] = write_rtstruct(
        masks, root / "rs.dcm", reference_files=ct_files, algorithm_type="MANUAL"
    )
    objects["SEG"] = write_seg(masks, root / "seg.dcm", reference_files=ct_files, algorithm_type="MANUAL")
    report = AdministrationReport(
        patient_id="CLIENT-1",
        radiopharmaceutical="177Lu-PSMA-617",
        nuclide="Lu-177",
        administered_activity_mbq=7312.5,
        injection_time=T_INJECTION,
        route="intravenous",
        event_uid="1.2.826.0.1.3680043.8.498.2203",
        pre_activity_mbq=7420.0,
        post_activity_mbq=101.5,
        pre_activity_time=T_INJECTION - timedelta(minutes=12),
        post_activity_time=T_INJECTION + timedelta(minutes=40),
        volume_ml=8.0,
        lot="LOT-2201",
        dispense_id="D2201",
        prescription_id="RX2201",
        administered_by="nurse.one",
    )
    objects["RRDSR"] = root / "rrdsr.dcm"
    objects["RRDSR"].write_bytes(write_rrdsr_bytes(report, site_timezone="Europe/Berlin"))
    examples = Path(__file__).resolve().parents[2] / "examples"
    table = read_lesion_csv(next(examples.rglob("baseline.csv")))
    pet_headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted((root / "pet").glob("*.dcm"))]
    sr = measurement_report(table, pet_headers)
    objects["TID 1500 SR"] = root / "sr.dcm"
    sr.save_as(objects["TID 1500 SR"], enforce_file_format=True)
    return Written(ct, ct_files, dose, ring, objects)


def _re_encoded_16_bit(path: Path, out: Path) -> Path:
    """The 32-bit RT Dose with its pixels re-encoded in 16 bits (high words), every other attribute kept."""
    ds = pydicom.dcmread(path)
    ds.PixelData = (ds.pixel_array >> 16).astype("<u2").tobytes()
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.save_as(out)
    return out


def test_dciodvfy_and_dcmtk_accept_every_object(written: Written, tmp_path: Path) -> None:
    dciodvfy, dcmdump, dsrdump = _tool("dciodvfy"), _tool("dcmdump"), _tool("dsrdump")
    summary = []
    for kind, path in written.objects.items():
        checked = _re_encoded_16_bit(path, tmp_path / "dose16.dcm") if kind == "RT Dose (32 bit)" else path
        result = _run(dciodvfy, str(checked))
        errors = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]
        dump = _run(dcmdump, "-E", str(path))
        dump_errors = [line for line in dump.stderr.splitlines() if line.startswith(("E:", "F:"))]
        row = f"{kind}: dciodvfy {len(errors)} errors; dcmdump exit {dump.returncode}"
        assert errors == [], f"{kind}: {errors}"
        assert dump.returncode == 0 and dump_errors == [], f"{kind}: {dump.stderr}"
        if kind in ("RRDSR", "TID 1500 SR"):
            sr = _run(dsrdump, "-Ee", str(path))
            sr_errors = [line for line in sr.stderr.splitlines() if line.startswith(("E:", "F:"))]
            assert sr.returncode == 0 and sr_errors == [], f"{kind}: {sr.stderr}"
            assert "Radiopharmaceutical Administration" in sr.stdout or kind == "TID 1500 SR"
            row += f"; dsrdump exit {sr.returncode}"
        summary.append(row)
    print("\n" + "\n".join(summary))


# ------------------------------------------------------------------------------------------ OpenREM
def _code(item: Any, attribute: str = "ConceptNameCodeSequence") -> tuple[str, str]:
    sequence = getattr(item, attribute, None)
    return (str(sequence[0].CodeValue), str(sequence[0].CodingSchemeDesignator)) if sequence else ("", "")


def _meaning(item: Any) -> str:
    return str(item.ConceptCodeSequence[0].CodeMeaning)


def openrem_extract(ds: Any) -> dict[str, Any]:
    """What OpenREM's RRDSR import (remapp/extractors/rdsr_methods.py, OpenREM 1.0) takes from a file,
    reimplemented from its code paths: the root's items with Associated Procedure (363589002, SCT or
    G-C2D0, SRT) and Has Intent under it; in the Radiopharmaceutical Administration container (113502) the
    agent, radionuclide, half-life, start, administered activity, the pre- and post-administration
    activities (113508/113509) with the Activity Measurement Device (113540) and Observer Type (121005)
    among their children, and the route (410675002 / G-C340) with Site of (272737002 / G-C581) under it.
    The measurement times (Observation DateTime of 113508/113509) are read as well."""
    found: dict[str, Any] = {}
    for item in ds.ContentSequence:
        concept = _code(item)
        if concept in (("363589002", "SCT"), ("G-C2D0", "SRT")):
            found["associated_procedure"] = _meaning(item)
            for child in item.ContentSequence:
                if _code(child) in (("363703001", "SCT"), ("G-C0E8", "SRT")):
                    found["has_intent"] = _meaning(child)
        elif concept[0] == "113502":
            for event in item.ContentSequence:
                code = _code(event)
                if code in (("349358000", "SCT"), ("F-61FDB", "SRT")):
                    found["radiopharmaceutical_agent"] = _meaning(event)
                elif code[0] == "123003":
                    found["start"] = str(event.DateTime)
                elif code[0] == "113507":
                    found["administered_activity"] = float(event.MeasuredValueSequence[0].NumericValue)
                elif code[0] in ("113508", "113509"):
                    prefix = "pre" if code[0] == "113508" else "post"
                    found[f"{prefix}_activity"] = float(event.MeasuredValueSequence[0].NumericValue)
                    found[f"{prefix}_time"] = str(getattr(event, "ObservationDateTime", "") or "") or None
                    for child in getattr(event, "ContentSequence", []):
                        if _code(child)[0] == "113540":
                            found[f"{prefix}_device"] = _meaning(child)
                        elif _code(child)[0] == "121005":
                            found[f"{prefix}_observer_type"] = _meaning(child)
                elif code in (("410675002", "SCT"), ("G-C340", "SRT")):
                    found["route"] = _meaning(event)
                    for child in getattr(event, "ContentSequence", []):
                        if _code(child) in (("272737002", "SCT"), ("G-C581", "SRT")):
                            found["site_of"] = _meaning(child)
    return found


def test_openrem_logic_finds_procedure_intent_route_site_and_measured_activities(written: Written) -> None:
    extracted = openrem_extract(pydicom.dcmread(written.objects["RRDSR"]))
    print(f"\nOpenREM logic extracted: {extracted}")
    assert extracted["associated_procedure"] == "Administration of radiopharmaceutical"
    assert extracted["has_intent"] == "Therapeutic Intent"
    assert extracted["route"] == "Intravenous route" and extracted["site_of"] == "Vein"
    assert extracted["administered_activity"] == 7312.5
    assert (extracted["pre_activity"], extracted["post_activity"]) == (7420.0, 101.5)
    # site time (Europe/Berlin, UTC+1 in March): 08:48 and 09:40 UTC
    assert extracted["pre_time"] == "20260302094800.000000+0100"
    assert extracted["post_time"] == "20260302104000.000000+0100"
    assert extracted["pre_device"] == extracted["post_device"] == "Dose Calibrator"
    assert extracted["pre_observer_type"] == extracted["post_observer_type"] == "Device"
    assert extracted["start"] == "20260302100000.000000+0100"


# ------------------------------------------------------------------------------------------ highdicom
def test_highdicom_reads_the_seg(written: Written) -> None:
    import highdicom as hd

    seg = hd.seg.segread(written.objects["SEG"])
    labels = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence}
    assert labels == {1: "bone", 2: "kidney_left"}
    # one frame per segment and slice that holds any of it: ring on 4 slices, box on 1; 12 frames empty
    assert int(seg.NumberOfFrames) == int(written.ring.any(axis=(1, 2)).sum()) + 1
    volume = seg.get_volume(segment_numbers=[1], combine_segments=True, dtype=np.uint8)
    assert int(np.asarray(volume.array).sum()) == int(written.ring.sum())  # the hole stays a hole
    back = resample(read_seg(written.objects["SEG"])["bone"], written.ct, method="nearest")
    np.testing.assert_array_equal(back.array, written.ring)


# ------------------------------------------------------------------------------------------ plastimatch
def test_plastimatch_and_simpleitk_read_the_rt_dose_with_the_ct_geometry(
    written: Written, tmp_path: Path
) -> None:
    import SimpleITK as sitk

    plastimatch = _tool("plastimatch")
    dose_file = str(written.objects["RT Dose (32 bit)"])
    result = _run(
        plastimatch, "convert", "--input", dose_file, "--output-dose-img", str(tmp_path / "dose.mha")
    )
    assert result.returncode == 0, result.stderr
    image = sitk.ReadImage(str(tmp_path / "dose.mha"))
    ct = written.ct
    assert image.GetOrigin() == pytest.approx(ct.origin_mm)  # LPS, the CT's first voxel centre
    assert image.GetSpacing() == pytest.approx(ct.spacing_mm[::-1])  # (x, y, z) = (column, row, slice)
    assert image.GetDirection() == pytest.approx((1, 0, 0, 0, 1, 0, 0, 0, 1))
    values = sitk.GetArrayFromImage(image)
    np.testing.assert_allclose(values, written.dose.array, rtol=1e-6, atol=written.dose.array.max() * 1e-6)
    # SimpleITK (GDCM) reads the file directly: same geometry; it does not apply DoseGridScaling
    direct = sitk.ReadImage(str(written.objects["RT Dose (32 bit)"]))
    assert direct.GetOrigin() == pytest.approx(ct.origin_mm) and direct.GetSize() == image.GetSize()
    scaling = float(pydicom.dcmread(written.objects["RT Dose (32 bit)"]).DoseGridScaling)
    stored = sitk.GetArrayFromImage(direct).astype(np.float64)
    assert stored.max() <= 2**31 - 1
    np.testing.assert_allclose(stored * scaling, written.dose.array, rtol=1e-6, atol=1e-6)
    assert math.isclose(
        float(read_series(written.objects["RT Dose (32 bit)"]).array.max()),
        written.dose.array.max(),
        rel_tol=1e-6,
    )


def test_plastimatch_keeps_the_hole_of_a_region(written: Written, tmp_path: Path) -> None:
    """A ring written as RTSTRUCT and rasterised by plastimatch on the CT keeps its hole (keyhole contours);
    with separate outer and inner contours plastimatch fills it."""
    import SimpleITK as sitk

    plastimatch = _tool("plastimatch")
    ct_folder = written.ct_files[0].parent
    result = _run(plastimatch, "convert", "--input", str(written.objects["RTSTRUCT"]), "--referenced-ct",
                  str(ct_folder), "--output-prefix", str(tmp_path / "ss"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    bone = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "ss" / "bone.mha"))).astype(bool)
    assert int(bone.sum()) == int(written.ring.sum())
    np.testing.assert_array_equal(bone, written.ring)
    # the same ring as an outer and a separate inner contour per slice: plastimatch fills the hole
    legacy = _with_separate_hole_contours(written, tmp_path / "legacy.dcm")
    result = _run(plastimatch, "convert", "--input", str(legacy), "--referenced-ct", str(ct_folder),
                  "--output-prefix", str(tmp_path / "legacy"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    filled = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "legacy" / "bone.mha"))).astype(bool)
    assert filled.sum() > written.ring.sum() and not filled[written.ring == 0][2 * 24 * 20 :].all()


def _with_separate_hole_contours(written: Written, path: Path) -> Path:
    """The RTSTRUCT with the ring's contours replaced by marching-squares outlines, the hole a contour of
    its own (as contour writers commonly do)."""
    import contourpy
    from pydicom.dataset import Dataset

    ds = pydicom.dcmread(written.objects["RTSTRUCT"])
    ring_roi = next(c for c in ds.ROIContourSequence if c.ReferencedROINumber == 1)
    template = ring_roi.ContourSequence[0]
    items = []
    for k in range(written.ring.shape[0]):
        padded = np.pad(written.ring[k].astype(float), 1)
        for line in contourpy.contour_generator(z=padded).lines(0.5):
            points = np.asarray(line)[:-1] - 1.0
            world = written.ct.world_coordinates_mm(
                np.column_stack([np.full(len(points), k), points[:, 1], points[:, 0]])
            )
            item = Dataset()
            item.ContourImageSequence = template.ContourImageSequence
            item.ContourGeometricType = "CLOSED_PLANAR"
            item.NumberOfContourPoints = len(world)
            item.ContourData = [f"{v:.4f}" for v in world.ravel()]
            items.append(item)
    ring_roi.ContourSequence = items
    ds.save_as(path)
    return path
