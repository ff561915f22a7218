"""DICOM writers: dciodvfy-valid objects, round trips of geometry (0.01 mm) and values."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pydicom
import pytest

from theradose.errors import GeometryError, InputError
from theradose.imaging import Volume
from theradose.io.dicom import (
    PatientInfo,
    RadiopharmaceuticalInfo,
    discover_series,
    read_series,
    write_ct_series,
    write_nm_series,
)
from theradose.io.dicom.write import quantise, write_pet_series, write_rtdose

CET = timezone(timedelta(hours=1))
T_ACQ = datetime(2026, 11, 20, 10, 30, tzinfo=CET)
Validator = Callable[[Path], list[str]]


def ct_volume(rng: np.random.Generator) -> Volume:
    hu = rng.integers(-1000, 1800, size=(6, 12, 10)).astype(np.float32)
    return Volume.from_spacing(
        hu, (2.5, 0.9765625, 0.9765625), (-120.5, -80.25, 40.0), unit="HU", acquisition_datetime=T_ACQ
    )


def oblique_affine(spacing: tuple[float, float, float]) -> np.ndarray:
    """Rotation of 20° about x then 10° about z; slices perpendicular to the planes."""
    a, b = np.radians(20.0), np.radians(10.0)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rz = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
    r = rz @ rx
    x_dir, y_dir = r[:, 0], r[:, 1]
    affine = np.eye(4)
    affine[:3, 0] = np.cross(x_dir, y_dir) * spacing[0]
    affine[:3, 1] = y_dir * spacing[1]
    affine[:3, 2] = x_dir * spacing[2]
    affine[:3, 3] = (12.3, -45.6, 78.9)
    return affine


def test_ct_series_is_valid_and_round_trips_exactly(
    tmp_path: Path, rng: np.random.Generator, patient: PatientInfo, dciodvfy: Validator
) -> None:
    ct = ct_volume(rng)
    files = write_ct_series(ct, tmp_path / "ct", patient=patient, series_description="CT day 1")
    assert len(files) == 6
    for f in (files[0], files[-1]):
        assert dciodvfy(f) == []
    back = read_series(tmp_path / "ct")
    assert back.unit == "HU"
    np.testing.assert_array_equal(back.array, ct.array)  # integral HU are stored unscaled
    np.testing.assert_allclose(back.affine, ct.affine, atol=0.01)
    assert back.acquisition_datetime == T_ACQ
    ds = pydicom.dcmread(files[2])
    assert ds.PatientID == "TD-0001"
    assert float(ds.PatientWeight) == 78.5
    # Slice 2 centre: z = 40 + 2 * 2.5 mm, by hand.
    assert [float(v) for v in ds.ImagePositionPatient] == pytest.approx([-120.5, -80.25, 45.0])


def test_ct_non_integral_values_use_a_rescale(
    tmp_path: Path, patient: PatientInfo, dciodvfy: Validator
) -> None:
    values = np.linspace(-1000.25, 2999.75, 4 * 5 * 6).reshape(4, 5, 6)
    ct = Volume.from_spacing(values, (3.0, 1.5, 1.5), unit="HU")
    files = write_ct_series(ct, tmp_path, patient=patient)
    assert dciodvfy(files[0]) == []
    back = read_series(tmp_path)
    step = (values.max() - values.min()) / 65535
    assert np.max(np.abs(back.array - values)) <= step / 2 + 1e-6


def test_oblique_ct_geometry_round_trips(
    tmp_path: Path, rng: np.random.Generator, patient: PatientInfo
) -> None:
    ct = Volume(rng.integers(-100, 100, (5, 7, 9)).astype(np.int16), oblique_affine((3.0, 1.1, 0.8)), "HU")
    write_ct_series(ct, tmp_path, patient=patient)
    back = read_series(tmp_path)
    np.testing.assert_allclose(back.affine, ct.affine, atol=0.01)
    np.testing.assert_array_equal(back.array, ct.array)


def test_nm_bqml_is_valid_and_round_trips(
    tmp_path: Path,
    rng: np.random.Generator,
    patient: PatientInfo,
    lu177: RadiopharmaceuticalInfo,
    dciodvfy: Validator,
) -> None:
    activity = rng.gamma(2.0, 5000.0, size=(8, 16, 16))
    spect = Volume(
        activity, oblique_affine((4.42, 4.42, 4.42)), "Bq/mL", frame_uid="1.2.3.4", acquisition_datetime=T_ACQ
    )
    path = write_nm_series(
        spect,
        tmp_path / "nm",
        patient=patient,
        radiopharmaceutical=lu177,
        frame_duration_s=15.0,
        n_projections=60,
        energy_windows_kev=[(187.2, 228.8)],
    )
    assert dciodvfy(path) == []
    ds = pydicom.dcmread(path)
    assert ds.Units == "BQML"
    assert ds.NumberOfFrames == 8
    assert float(ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose) == 7400.0  # MBq in NM
    assert ds.RadiopharmaceuticalInformationSequence[0].RadionuclideCodeSequence[0].CodeValue == "447553000"
    back = read_series(path)
    assert back.unit == "Bq/mL"
    assert back.frame_uid == "1.2.3.4"
    assert back.acquisition_datetime == T_ACQ
    np.testing.assert_allclose(back.affine, spect.affine, atol=0.01)
    # 16-bit storage: error at most half a quantisation step (max / 65535 / 2).
    assert np.max(np.abs(back.array - activity)) <= activity.max() / 65535 / 2 * 1.0001
    # DICOM -> Volume -> DICOM -> Volume is exact to float32 precision.
    write_nm_series(back, tmp_path / "again", patient=patient, radiopharmaceutical=lu177)
    again = read_series(tmp_path / "again")
    np.testing.assert_allclose(again.array, back.array, rtol=2e-7, atol=0)
    np.testing.assert_allclose(again.affine, back.affine, atol=1e-6)


def test_nm_counts_need_acquisition_and_quantify_with_calibration(
    tmp_path: Path, patient: PatientInfo, lu177: RadiopharmaceuticalInfo, dciodvfy: Validator
) -> None:
    counts = np.full((4, 8, 8), 1200.0)
    spect = Volume.from_spacing(counts, (4.0, 4.0, 4.0), unit="counts", acquisition_datetime=T_ACQ)
    with pytest.raises(InputError, match="frame_duration_s and n_projections"):
        write_nm_series(spect, tmp_path, patient=patient, radiopharmaceutical=lu177)
    path = write_nm_series(
        spect, tmp_path, patient=patient, radiopharmaceutical=lu177, frame_duration_s=20.0, n_projections=60
    )
    assert dciodvfy(path) == []
    # Hand calculation: T = 60 x 20 s = 1200 s; CF = 10 cps/MBq; voxel 0.064 mL;
    # A = 1200 / (1200 * 10) MBq = 0.1 MBq = 1e5 Bq per voxel -> 1e5 / 0.064 = 1.5625e6 Bq/mL.
    back = read_series(path, calibration_cps_per_mbq=10.0)
    assert back.unit == "Bq/mL"
    np.testing.assert_allclose(back.array, 1.5625e6, rtol=1e-6)
    # The same counts with the factor stored as a Real World Value Mapping: quantitative without it.
    stored = write_nm_series(
        spect,
        tmp_path / "cf",
        patient=patient,
        radiopharmaceutical=lu177,
        frame_duration_s=20.0,
        n_projections=60,
        calibration_cps_per_mbq=10.0,
    )
    assert dciodvfy(stored) == []
    np.testing.assert_allclose(read_series(stored).array, 1.5625e6, rtol=1e-6)
    with pytest.raises(InputError, match="already in Bq/mL"):
        read_series(stored, calibration_cps_per_mbq=10.0)


def test_nm_stack_along_minus_normal_is_flipped_not_moved(
    tmp_path: Path, patient: PatientInfo, lu177: RadiopharmaceuticalInfo
) -> None:
    values = np.arange(3 * 4 * 5, dtype=float).reshape(3, 4, 5) + 1.0
    affine = np.eye(4)
    affine[:3, 0] = (0.0, 0.0, -5.0)
    affine[:3, 1] = (0.0, 2.0, 0.0)
    affine[:3, 2] = (2.0, 0.0, 0.0)
    spect = Volume(values, affine, "Bq/mL")
    write_nm_series(spect, tmp_path, patient=patient, radiopharmaceutical=lu177)
    back = read_series(tmp_path)
    # voxel (k, j, i) of the input lies at the same place as voxel (2 - k, j, i) of the result
    np.testing.assert_allclose(
        back.world_coordinates_mm([2, 1, 3]), spect.world_coordinates_mm([0, 1, 3]), atol=1e-6
    )
    np.testing.assert_allclose(back.array[::-1], values, rtol=0, atol=60.0 / 65535 / 2 * 1.0001)


def test_writer_input_errors(tmp_path: Path, patient: PatientInfo, lu177: RadiopharmaceuticalInfo) -> None:
    spect = Volume.from_spacing(np.ones((2, 3, 3)), (4, 4, 4), unit="Bq/mL")
    with pytest.raises(InputError, match="unit HU"):
        write_ct_series(spect, tmp_path, patient=patient)
    with pytest.raises(InputError, match="NaN"):
        write_nm_series(
            spect.with_array(np.full((2, 3, 3), np.nan)), tmp_path, patient=patient, radiopharmaceutical=lu177
        )
    sheared = np.eye(4)[:, [2, 1, 0, 3]]  # axes (z, y, x) ...
    sheared[:3, 1] = (0.5, 1.0, 0.0)  # ... with the row axis leaning towards x
    with pytest.raises(GeometryError, match="not orthogonal"):
        write_ct_series(Volume(np.zeros((2, 3, 3)), sheared, "HU"), tmp_path, patient=patient)
    tilted = np.eye(4)[:, [2, 1, 0, 3]]
    tilted[:3, 0] = (0.0, 1.0, 4.0)
    with pytest.raises(GeometryError, match="tilted"):
        write_nm_series(
            Volume(np.ones((3, 3, 3)), tilted, "Bq/mL"), tmp_path, patient=patient, radiopharmaceutical=lu177
        )
    with pytest.raises(InputError, match="patient_id"):
        PatientInfo(patient_id="")
    with pytest.raises(InputError, match="injected_activity_mbq"):
        RadiopharmaceuticalInfo("Lu-177", "PSMA", -1.0, T_ACQ)
    with pytest.raises(InputError, match="not recognised"):
        RadiopharmaceuticalInfo("unobtainium", "x", 1.0, T_ACQ)


def test_quantise_hand_cases() -> None:
    q = quantise(np.array([0.0, 32767.5, 65535.0]))
    assert q.slope == 1.0 and not q.signed
    np.testing.assert_array_equal(q.pixels, [0, 32768, 65535])
    q = quantise(np.array([-2.0, 1.0]))
    assert q.signed and q.slope == pytest.approx(2.0 / 32767)
    q = quantise(np.array([[-3.0, 7.0]]), zero_intercept=False, integers_as_is=True)
    assert q.pixels.dtype == np.int16 and q.slope == 1.0


def test_discovery_reports_written_series(
    tmp_path: Path, rng: np.random.Generator, patient: PatientInfo, lu177: RadiopharmaceuticalInfo
) -> None:
    ct = ct_volume(rng)
    write_ct_series(ct, tmp_path / "a" / "ct", patient=patient)
    spect = Volume.from_spacing(np.ones((4, 8, 8)), (4.8, 4.8, 4.8), unit="Bq/mL", acquisition_datetime=T_ACQ)
    write_nm_series(spect, tmp_path / "b", patient=patient, radiopharmaceutical=lu177)
    (tmp_path / "b" / "notes.txt").write_text("not dicom")
    series = {s.modality: s for s in discover_series(tmp_path)}
    assert set(series) == {"CT", "NM"}
    assert series["CT"].shape == (6, 12, 10) and series["CT"].n_files == 6
    assert series["CT"].spacing_mm == pytest.approx((2.5, 0.9765625, 0.9765625))
    nm = series["NM"]
    assert (nm.units, nm.shape, nm.nuclide, nm.injected_activity_mbq) == (
        "Bq/mL",
        (4, 8, 8),
        "Lu-177",
        7400.0,
    )
    assert nm.acquisition_datetime == T_ACQ


def test_pet_series_is_valid(
    tmp_path: Path, rng: np.random.Generator, patient: PatientInfo, dciodvfy: Validator
) -> None:
    ga68 = RadiopharmaceuticalInfo("Ga-68", "68Ga-PSMA-11", 150.0, T_ACQ)
    pet = Volume.from_spacing(
        rng.uniform(0, 1e4, (3, 5, 5)), (3, 4, 4), unit="Bq/mL", acquisition_datetime=T_ACQ
    )
    files = write_pet_series(pet, tmp_path, patient=patient, radiopharmaceutical=ga68, frame_duration_s=120.0)
    assert dciodvfy(files[1]) == []
    with pytest.raises(InputError, match="acquisition_datetime"):
        write_pet_series(
            Volume.from_spacing(pet.array, (3, 4, 4), unit="Bq/mL"),
            tmp_path,
            patient=patient,
            radiopharmaceutical=ga68,
            frame_duration_s=120.0,
        )


def test_rtdose_round_trip_and_validity(
    tmp_path: Path, rng: np.random.Generator, patient: PatientInfo, dciodvfy: Validator
) -> None:
    dose = rng.gamma(2.0, 3.0, size=(5, 6, 7))
    vol = Volume(dose, oblique_affine((4.0, 2.5, 2.5)), "Gy", frame_uid="1.2.826.0.1.3680043.8.498.77")
    path = write_rtdose(vol, tmp_path / "dose.dcm", patient=patient, study_uid="1.2.826.0.1.3680043.8.498.78")
    ds = pydicom.dcmread(path)
    assert (ds.DoseUnits, ds.DoseType, ds.BitsAllocated) == ("GY", "PHYSICAL", 32)
    assert ds.FrameOfReferenceUID == "1.2.826.0.1.3680043.8.498.77"
    assert [float(v) for v in ds.GridFrameOffsetVector] == pytest.approx([0.0, 4.0, 8.0, 12.0, 16.0])
    # DoseGridScaling = max / (2^31 - 1): the largest stored value fits a signed 32-bit integer
    assert float(ds.DoseGridScaling) == pytest.approx(dose.max() / 2147483647, rel=1e-12)
    stored = np.frombuffer(ds.PixelData, dtype="<u4")
    assert stored.max() <= 2**31 - 1 and stored.max() >= 2**31 - 2
    as_signed = np.frombuffer(ds.PixelData, dtype="<i4")  # a reader taking the pixels as signed
    np.testing.assert_array_equal(as_signed, stored)
    back = read_series(path)
    assert back.unit == "Gy" and back.frame_uid == vol.frame_uid
    np.testing.assert_allclose(back.affine, vol.affine, atol=0.01)
    np.testing.assert_allclose(back.array, dose, rtol=2e-7, atol=dose.max() * 1e-9)
    # dicom3tools (2022) aborts on any 32-bit pixel data (also pydicom's own rtdose.dcm), so the same
    # object is validated with its pixels re-encoded in 16 bits; all other attributes are unchanged.
    high_words = (ds.pixel_array >> 16).astype("<u2")
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelData = high_words.tobytes()
    ds.save_as(tmp_path / "dose16.dcm")
    assert dciodvfy(tmp_path / "dose16.dcm") == []
    path16 = write_rtdose(
        vol,
        tmp_path / "d16.dcm",
        patient=patient,
        bits=16,
        dose_type="EFFECTIVE",
        referenced_record_uid="1.2.3.4",
    )
    assert dciodvfy(path16) == []
    assert pydicom.dcmread(path16).DoseSummationType == "RECORD"
    assert np.max(np.abs(read_series(path16).array - dose)) <= dose.max() / 65535 / 2 * 1.0001
    with pytest.raises(InputError, match="negative"):
        write_rtdose(vol.with_array(dose - 1.0), tmp_path / "neg.dcm", patient=patient)


def test_rtdose_joins_the_study_of_its_images(tmp_path: Path, rng: np.random.Generator) -> None:
    """With reference_files the RT Dose files with its images: same study, frame of reference and patient
    module (name, ID, birth date, sex of the images, not of the caller's record)."""
    images = PatientInfo(name="Image^Patient", patient_id="IMG-7", sex="F", birth_date=date(1950, 2, 3))
    frame = "1.2.826.0.1.3680043.8.498.71"
    spect = Volume.from_spacing(
        rng.uniform(0, 1e4, (4, 5, 6)),
        (4.0, 4.0, 4.0),
        unit="Bq/mL",
        frame_uid=frame,
        acquisition_datetime=T_ACQ,
    )
    agent = RadiopharmaceuticalInfo("Lu-177", "177Lu-PSMA-617", 7400.0, T_ACQ)
    nm = write_nm_series(
        spect,
        tmp_path / "nm",
        patient=images,
        radiopharmaceutical=agent,
        study_uid="1.2.826.0.1.3680043.8.498.72",
    )
    dose = spect.with_array(rng.uniform(0, 20, spect.shape), unit="Gy")
    path = write_rtdose(dose, tmp_path / "dose.dcm", reference_files=[nm])
    ds, source = pydicom.dcmread(path), pydicom.dcmread(nm)
    for keyword in (
        "StudyInstanceUID",
        "FrameOfReferenceUID",
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyDate",
        "StudyTime",
        "StudyID",
    ):
        assert ds[keyword].value == source[keyword].value, keyword
    assert ds.SeriesInstanceUID != source.SeriesInstanceUID
    with pytest.raises(InputError, match="filed under another patient"):
        write_rtdose(dose, tmp_path / "x.dcm", reference_files=[nm], patient=PatientInfo(patient_id="OTHER"))
    elsewhere = Volume(dose.array, dose.affine, "Gy", frame_uid="1.2.826.0.1.3680043.8.498.99")
    with pytest.raises(GeometryError, match="frame of reference"):
        write_rtdose(elsewhere, tmp_path / "y.dcm", reference_files=[nm])
    with pytest.raises(InputError, match="patient"):
        write_rtdose(dose, tmp_path / "z.dcm")
