"""SUV scale factors on synthesized PET headers in GE, Siemens and Philips conventions.

Expected values are computed by hand from the QIBA vendor-neutral pseudo-code:
SUVbw scale = W[kg]·1000 / (D·2^(-Δt/T½)).  With W = 70 kg, D = 3.7e8 Bq, T½ = 6586.2 s (F-18) and
Δt = 3600 s: 2^(-3600/6586.2) = exp(-0.546597·0.693147) = exp(-0.378875) = 0.684654, so the decayed dose
is 2.533220e8 Bq and the scale is 70000 / 2.533220e8 = 2.763367e-4 g/Bq.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from theradose.errors import DicomError, InputError
from theradose.reading.suv import frame_average_time_s, lean_body_mass_kg, suv_scale

SCALE_3600_S = 2.763367e-4  # see module docstring
# Janmahasatian 2005, W = 70 kg, H = 1.75 m: BMI = 22.857; male 9270·70/(6680+216·22.857) = 55.8571 kg
LBM_MALE_KG = 55.8571
# female 9270·70/(8780+244·22.857) = 648900/14357.14 = 45.1970 kg
LBM_FEMALE_KG = 45.1970


def test_lean_body_mass_janmahasatian_by_hand() -> None:
    assert lean_body_mass_kg(70.0, 1.75, "M") == pytest.approx(LBM_MALE_KG, rel=1e-5)
    assert lean_body_mass_kg(70.0, 1.75, "F") == pytest.approx(LBM_FEMALE_KG, rel=1e-5)
    with pytest.raises(InputError, match="sex"):
        lean_body_mass_kg(70.0, 1.75, "O")  # type: ignore[arg-type]


def test_frame_average_time_is_slightly_before_midpoint() -> None:
    # λ = ln2/6586.2 = 1.052417e-4 /s, λT = 0.01262900 for T = 120 s;
    # ln(λT/(1-e^-λT)) = λT/2 - (λT)^2/24 + ... = 0.00631450 - 0.00000665 = 0.00630785 -> /λ = 59.937 s
    assert frame_average_time_s(120.0, 6586.2) == pytest.approx(59.937, abs=1e-3)


def test_series_time_used_when_not_after_acquisition(write_pet: Callable[..., Path]) -> None:
    path = write_pet(series_time="090000", acquisition_time="090500")
    result = suv_scale(path)
    assert result.reference_time == datetime(2026, 3, 15, 9, 0, 0)
    assert result.suv_bw_scale == pytest.approx(SCALE_3600_S, rel=1e-5)
    assert "SeriesDateTime" in result.method
    # SUL: same decayed dose, LBM instead of weight
    assert result.sul_scale == pytest.approx(SCALE_3600_S * LBM_MALE_KG / 70.0, rel=1e-5)
    assert result.pixel_suv_bw_scale == result.suv_bw_scale


def test_ge_private_scan_time_when_series_time_after_acquisition(write_pet: Callable[..., Path]) -> None:
    # Series time 11:00 is a reconstruction time; acquisition 09:10; GE private scan start 09:00
    path = write_pet(
        series_time="110000", acquisition_time="091000", ge_scan_datetime="20260315090000.000000"
    )
    result = suv_scale(path)
    assert result.reference_time == datetime(2026, 3, 15, 9, 0, 0)
    assert "0009,100D" in result.method
    assert result.suv_bw_scale == pytest.approx(SCALE_3600_S, rel=1e-5)


def test_siemens_back_computes_scan_start_from_frame_reference_time(write_pet: Callable[..., Path]) -> None:
    # Acquisition start 09:00:00, frame reference time 60 s, duration 120 s:
    # scan = 09:00:00 - 60 s + 59.937 s = 08:59:59.937 -> Δt = 3599.937 s -> scale 2.763348e-4
    path = write_pet(
        manufacturer="SIEMENS",
        series_time="101500",
        acquisition_time="090000",
        frame_reference_time_ms=60000.0,
        frame_duration_ms=120000.0,
    )
    result = suv_scale(path)
    assert result.decay_time_s == pytest.approx(3599.937, abs=1e-3)
    assert result.suv_bw_scale == pytest.approx(2.763348e-4, rel=1e-5)
    assert "FrameReferenceTime" in result.method


def test_siemens_series_folder_uses_earliest_acquisition(write_pet: Callable[..., Path]) -> None:
    write_pet(manufacturer="SIEMENS", series_time="101500", acquisition_time="090300", instance=2)
    path = write_pet(manufacturer="SIEMENS", series_time="101500", acquisition_time="090000", instance=1)
    result = suv_scale(path.parent)
    assert result.reference_time == datetime(2026, 3, 15, 9, 0, 0)
    assert "earliest AcquisitionDateTime" in result.method
    assert result.suv_bw_scale == pytest.approx(SCALE_3600_S, rel=1e-5)


def test_philips_counts_with_activity_scale_and_consistent_suv_factor(
    write_pet: Callable[..., Path],
) -> None:
    # counts -> Bq/mL factor 2.5; Philips SUV factor = 2.5 · 2.763367e-4 = 6.908418e-4 (consistent)
    path = write_pet(
        manufacturer="Philips Medical Systems",
        units="CNTS",
        philips_bqml_factor=2.5,
        philips_suv_factor=6.908418e-4,
    )
    result = suv_scale(path)
    assert result.pixel_to_bqml_scale == 2.5
    assert result.suv_bw_scale == pytest.approx(SCALE_3600_S, rel=1e-5)
    assert result.pixel_suv_bw_scale == pytest.approx(6.908418e-4, rel=1e-5)
    assert not any("differs" in n for n in result.notes)


def test_philips_inconsistent_suv_factor_is_reported(write_pet: Callable[..., Path]) -> None:
    path = write_pet(units="CNTS", philips_bqml_factor=2.5, philips_suv_factor=7.5e-4)
    result = suv_scale(path)
    assert any("7053,1000" in n and "differs" in n for n in result.notes)


def test_philips_counts_with_suv_factor_only(write_pet: Callable[..., Path]) -> None:
    path = write_pet(units="CNTS", philips_suv_factor=6.9e-4)
    result = suv_scale(path)
    assert result.pixel_suv_bw_scale == 6.9e-4
    assert result.pixel_to_bqml_scale is None


def test_admin_decay_correction_uses_undecayed_dose(write_pet: Callable[..., Path]) -> None:
    # 70000 g / 3.7e8 Bq = 1.891892e-4
    path = write_pet(decay_correction="ADMIN")
    result = suv_scale(path)
    assert result.suv_bw_scale == pytest.approx(1.891892e-4, rel=1e-6)
    assert result.decay_time_s == 0.0
    assert result.reference_time == datetime(2026, 3, 15, 8, 0, 0)


def test_start_datetime_preferred_and_midnight_crossing(write_pet: Callable[..., Path]) -> None:
    path = write_pet(start_datetime="20260315080000", start_time="070000")
    assert suv_scale(path).decay_time_s == pytest.approx(3600.0)
    # injection 23:30 the day before a 00:30 scan, only the start time given
    path = write_pet(folder="midnight", series_time="003000", acquisition_time="003000", start_time="233000")
    result = suv_scale(path)
    assert result.decay_time_s == pytest.approx(3600.0)
    assert result.suv_bw_scale == pytest.approx(SCALE_3600_S, rel=1e-5)


def test_sul_missing_height_gives_none_with_note(write_pet: Callable[..., Path]) -> None:
    result = suv_scale(write_pet(height_m=None))
    assert result.sul_scale is None
    assert any("PatientSize" in n for n in result.notes)


def test_female_sul(write_pet: Callable[..., Path]) -> None:
    result = suv_scale(write_pet(sex="F"))
    assert result.sul_scale == pytest.approx(SCALE_3600_S * LBM_FEMALE_KG / 70.0, rel=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "attribute"),
    [
        ({"weight_kg": None}, "PatientWeight"),
        ({"dose_bq": None}, "RadionuclideTotalDose"),
        ({"start_time": None}, "RadiopharmaceuticalStartTime"),
        ({"units": "CNTS"}, "7053,1009"),
        ({"corrected": ("ATTN",)}, "DECY"),
        ({"corrected": ("DECY",)}, "ATTN"),
        ({"decay_correction": "NONE"}, "DecayCorrection"),
        ({"half_life_s": None, "nuclide_meaning": "unknown"}, "RadionuclideHalfLife"),
        ({"start_datetime": "20260315100000"}, "after the scan"),
    ],
)
def test_unconvertible_images_raise_one_line(
    write_pet: Callable[..., Path], kwargs: dict[str, object], attribute: str
) -> None:
    with pytest.raises(DicomError, match=attribute) as info:
        suv_scale(write_pet(**kwargs))
    assert "\n" not in str(info.value)


def test_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        suv_scale(tmp_path / "nothing")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not dicom")
    with pytest.raises(InputError, match="no PET"):
        suv_scale(empty)
    with pytest.raises(DicomError, match="not a readable DICOM"):
        suv_scale(empty / "notes.txt")


def test_two_series_in_one_folder_rejected(write_pet: Callable[..., Path]) -> None:
    write_pet(folder="mixed", series_uid="1.2.3.4")
    path = write_pet(folder="mixed", series_uid="1.2.3.5")
    with pytest.raises(InputError, match="2 PET series"):
        suv_scale(path.parent)


def test_ga68_half_life_from_icrp107_when_header_lacks_it(write_pet: Callable[..., Path]) -> None:
    # Ga-68 T½ = 67.71 min = 4062.6 s (ICRP-107). 150 MBq, 70 kg, Δt = 3600 s:
    # 2^(-3600/4062.6) = exp(-0.614218) = 0.541064 -> decayed 8.11596e7 Bq -> 70000/8.11596e7 = 8.6250e-4
    path = write_pet(half_life_s=None, nuclide_meaning="^68^Gallium", dose_bq=1.5e8)
    result = suv_scale(path)
    assert result.half_life_s == pytest.approx(4062.6, rel=1e-4)
    assert result.suv_bw_scale == pytest.approx(8.6250e-4, rel=1e-4)
    assert any("ICRP-107" in n and "Ga-68" in n for n in result.notes)


def test_header_half_life_inconsistent_with_nuclide_is_reported(write_pet: Callable[..., Path]) -> None:
    # Cu-64 (T½ 12.7 h = 45720 s) labelled with the F-18 half-life: the header value is used, with a note
    path = write_pet(half_life_s=6586.2, nuclide_meaning="^64^Copper")
    result = suv_scale(path)
    assert result.half_life_s == 6586.2
    assert any("Cu-64" in n and "differs" in n for n in result.notes)
    # F-18 header value agrees with ICRP-107: no note
    assert not any("differs" in n for n in suv_scale(write_pet(folder="f18")).notes)


def test_gml_units_are_already_suv(write_pet: Callable[..., Path]) -> None:
    result = suv_scale(write_pet(units="GML"))
    assert result.pixel_suv_bw_scale == 1.0
    assert result.pixel_to_bqml_scale is None
    assert result.suv_bw_scale == pytest.approx(SCALE_3600_S, rel=1e-5)  # still given per Bq/mL


def test_bqml_with_philips_factor_notes_it(write_pet: Callable[..., Path]) -> None:
    result = suv_scale(write_pet(manufacturer="Philips", philips_suv_factor=2.76e-4))
    assert result.philips_suv_scale == 2.76e-4
    assert any("7053,1000" in n for n in result.notes)
    assert result.pixel_suv_bw_scale == pytest.approx(SCALE_3600_S, rel=1e-5)


def test_scales_at_another_time(write_pet: Callable[..., Path]) -> None:
    # ADMIN-corrected (reference 08:00, scale 70000/3.7e8 = 1.891892e-4) brought to 09:00:
    # dose decayed by 2^(-3600/6586.2) -> scale 2.763367e-4, the START value of the same scan
    result = suv_scale(write_pet(decay_correction="ADMIN"))
    suv_at, sul_at = result.scales_at(datetime(2026, 3, 15, 9, 0, 0))
    assert suv_at == pytest.approx(SCALE_3600_S, rel=1e-5)
    assert sul_at == pytest.approx(SCALE_3600_S * LBM_MALE_KG / 70.0, rel=1e-5)
    assert result.scales_at(result.reference_time)[0] == result.suv_bw_scale


def test_private_tags_read_from_implicit_vr_files(tmp_path: Path) -> None:
    """GE (0009,100D) and Philips (7053,1009) in an Implicit VR file (VR not stored in the file)."""
    from pydicom.uid import ImplicitVRLittleEndian

    from .conftest import make_pet_dataset

    ds = make_pet_dataset(
        series_time="110000",
        acquisition_time="091000",
        ge_scan_datetime="20260315090000",
        units="CNTS",
        philips_bqml_factor=2.5,
    )
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    path = tmp_path / "implicit.dcm"
    ds.save_as(path, enforce_file_format=True)
    result = suv_scale(path)
    assert result.reference_time == datetime(2026, 3, 15, 9, 0, 0)
    assert result.pixel_to_bqml_scale == 2.5
    assert result.suv_bw_scale == pytest.approx(SCALE_3600_S, rel=1e-5)
