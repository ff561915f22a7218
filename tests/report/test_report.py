"""The report a physicist signs, on hand-made records: numbers with fixed decimals and units, the dose table
with the budget's σ and dominant terms, warnings, Methods and references from what was done, DVH small
multiples on linear axes, oriented MIPs with labelled linear colour bars, A4 pages, sign-off lines."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from theradose.dosimetry.dvh import Dvh
from theradose.dosimetry.results import (
    Administration,
    Bed,
    Calibration,
    EngineDose,
    KineticsRecord,
    Patient,
    RegionKind,
    RegionResult,
    StudyDoses,
)
from theradose.dosimetry.uncertainty_budget import BudgetInputs, propagate_budget
from theradose.report import build_report_data, fill_signoff, signoff_html
from theradose.report.data import REFERENCES, ReportData, TacPlot, coronal_mip
from theradose.report.figures import (
    MAX_CURVES_PER_PANEL,
    _figure,
    draw_dvhs,
    draw_mips,
    dvh_panels,
    oriented_mip,
)
from theradose.report.html import render_html
from theradose.report.numbers import fixed, local_time, mass_g, plus_minus
from theradose.report.pdf import write_pdf
from theradose.report.tables import budget_table_rows, dose_table_rows, kinetics_table_rows

#: A4 in PDF points (ISO 216, 210 × 297 mm at 72 pt per inch).
A4_PT = (210 / 25.4 * 72, 297 / 25.4 * 72)

TAC = TacPlot(
    name="kidneys",
    time_h=(4.0, 24.0, 96.0),
    activity_mbq=(300.0, 200.0, 50.0),
    sigma_mbq=(15.0, 10.0, 2.5),
    curve_h=(0.0, 50.0, 100.0),
    curve_mbq=(320.0, 120.0, 45.0),
    model="bi",
    weights=(("mono", 0.2), ("bi", 0.8)),
    flags=("goodness_of_fit_failed",),
)


def _budget(region: str, dose_gy: float, bed: Bed | None) -> object:
    return propagate_budget(
        BudgetInputs(
            region=region,
            dose_gy=dose_gy,
            calibration_rel_sigma=0.02,
            recovery_rel_sigma=0.03,
            volume_rel_sigma=0.10,
            fit_tia_rel_sigma=0.025,
            decay_data_rel_sigma=0.001,
            effective_half_life_h=None if bed is None else bed.effective_half_life_h,
            fit_half_life_rel_sigma=None if bed is None else 0.02,
            alpha_beta_gy=None if bed is None else bed.alpha_beta_gy,
            repair_half_time_h=None if bed is None else bed.repair_half_time_h,
            sources={"calibration": "QA record qa.json (2030-01-01)", "volume": "segmentation ±1 voxel"},
        )
    ).rounded()


def _region(name: str, kind: RegionKind, dose_gy: float, **extra: object) -> RegionResult:
    bed = extra.pop("bed", None)
    budget = _budget(name, dose_gy, bed)  # type: ignore[arg-type]
    dvh = Dvh(tuple(np.linspace(0, 2 * dose_gy, 5)), (1.0, 0.8, 0.5, 0.2, 0.0))
    return RegionResult(
        name,
        kind,
        (EngineDose("local", dose_gy, budget.dose_sigma_gy, "local", dvh),),  # type: ignore[attr-defined]
        uncertainty=budget,  # type: ignore[arg-type]
        bed=bed,  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )


def _record(*, organ_pvc: bool = True, regions: tuple[RegionResult, ...] | None = None) -> StudyDoses:
    failed = KineticsRecord(
        method="fit",
        model="bi",
        flags=("goodness_of_fit_failed", "parameter_correlation_above_limit"),
        selection_criterion="AIC",
        chi_square=28.9,
        dof=1,
        p_value=7.6e-8,
    )
    stp = KineticsRecord(
        method="single_time_point",
        model="stp-earlier-cycle",
        flags=("stp_time_outside_window",),
        notes=("scan at 168 h is 4.20 effective half-lives (40 h) after administration, outside 0.75-2.5",),
        time_in_half_lives=4.2,
    )
    bed = Bed(4.72623, 4.30589, "local", "kidney", 2.6, 2.8, 44.7013, "Barone 2005")
    default = (
        _region("kidneys", RegionKind.ORGAN, 4.30589, bed=bed, mass_g=312.456, tia_mbq_h=12345.6,
                tia_sigma_mbq_h=321.0, kinetics=failed, effective_half_life_h=44.7013),
        _region("lacrimal_glands", RegionKind.ORGAN, 3.3, mass_g=0.000123, kinetics=stp,
                flags=("below_resolution",)),
        _region("tumour_1", RegionKind.TUMOUR, 25.8, mass_g=5.7),
    )  # fmt: skip
    return StudyDoses(
        patient=Patient("P1", "Doe^John <P1>"),
        cycle=2,
        administration=Administration(
            "Lu-177", "177Lu-PSMA-617", 7400.0, datetime(2030, 1, 6, 9, 0, tzinfo=UTC)
        ),
        reference_dose="local",
        engines=("local",),
        regions=regions or default,
        timepoints_h=(4.0, 24.0, 96.0, 168.0),
        registration={"method": "none", "reference_timepoint": 1},
        partial_volume_correction=True,
        organ_partial_volume_correction=(
            {"method": "enlarged_voi", "margin_mm": 17.7, "regions": ["kidneys"]} if organ_pvc else None
        ),
        calibration=Calibration(
            "bqml",
            5.67,
            0.1134,
            datetime(2029, 12, 30, 9, 0, tzinfo=UTC),
            "camera A, MEGP",
            "qa.json (SHA-256 ab)",
        ),
        site_time_zone="Europe/Berlin",
        provenance={"software": "theradose 9.9", "inputs_sha256": "c0ffee", "input_files": 8},
    )


def _data(record: StudyDoses | None = None, **kwargs: object) -> ReportData:
    spect = np.zeros((6, 5, 4))
    spect[5, 3, 0] = 7.0e6  # superior slice, first column
    return build_report_data(
        record or _record(),
        tacs=[TAC],
        spect_mip=coronal_mip(spect),
        dose_mip=coronal_mip(spect * 1e-6),
        aspect=1.0,
        segmentation_source="nifti",
        partial_volume_correction=True,
        recovery_corrected_regions=["tumour_1"],
        output_hashes={"doses.json": "5558039d"},
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def data() -> ReportData:
    return _data()


def test_numbers_use_fixed_decimals_and_never_e_notation() -> None:
    assert fixed(4.30589) == "4.31" and fixed(0.000123) == "0.0001" and fixed(12345.6) == "12 346"
    assert fixed(1.5e-12) == "0.0000" and "e" not in fixed(3.2e-9) and "e" not in fixed(7.1e9)
    assert plus_minus(4.30589, 0.6412, "Gy") == "4.31 ± 0.64 Gy"
    assert (mass_g(312.456), mass_g(26.74), mass_g(0.68)) == ("312", "26.7", "0.68")
    # 09:00 UTC on 6 January is 10:00 in Berlin (CET, UTC+1)
    from zoneinfo import ZoneInfo

    assert (
        local_time(datetime(2030, 1, 6, 9, 0, tzinfo=UTC), ZoneInfo("Europe/Berlin"))
        == "2030-01-06 10:00 CET"
    )


def test_dose_table_shows_the_budget_sigma_dominant_terms_and_flags(data: ReportData) -> None:
    header, rows = dose_table_rows(data)
    assert header[3] == "Dose (local engine) (Gy)" and header[7] == "Dominant uncertainty"
    kidneys = next(r for r in rows if r[0] == "kidneys")
    budget = data.doses.region("kidneys").uncertainty
    assert budget is not None
    # σ of the reference dose is the budget's: volume 10 %, recovery 3 %, fit 2.5 %, calibration 2 %, decay
    # 0.1 % (all sensitivity ±1): sqrt(0.1² + 0.03² + 0.025² + 0.02² + 0.001²) = 10.92 %
    assert budget.dose_relative_sigma == pytest.approx(0.10921, abs=1e-5)
    assert kidneys[3] == plus_minus(4.30589, budget.dose_sigma_gy) == "4.31 ± 0.47"
    assert kidneys[4] == "10.9" and kidneys[7] == "vol." and kidneys[8] == "GoF r"
    assert kidneys[1] == "312" and kidneys[2] == "12 346 ± 321"
    lacrimal = next(r for r in rows if r[0] == "lacrimal_glands")
    assert lacrimal[1] == "0.00" and lacrimal[8] == "res window"
    assert not any(re.search(r"\d[eE][+-]?\d", cell) for row in rows for cell in row)


def test_budget_and_kinetics_tables(data: ReportData) -> None:
    header, rows = budget_table_rows(data)
    kidneys = dict(zip(header, next(r for r in rows if r[0] == "kidneys"), strict=True))
    assert (kidneys["cal."], kidneys["recov."], kidneys["vol."], kidneys["fit"]) == (
        "2.0",
        "3.0",
        "10.0",
        "2.5",
    )
    assert kidneys["dens."] == "n.a." and kidneys["reg."] == "n.a."  # not assessed, said so
    header, rows = kinetics_table_rows(data)
    kidneys = dict(zip(header, next(r for r in rows if r[0] == "kidneys"), strict=True))
    assert (kidneys["Model"], kidneys["Criterion"], kidneys["chi2/dof"], kidneys["p"]) == (
        "bi",
        "AIC",
        "28.90",
        "< 0.001",
    )


def test_warnings_name_failed_fits_windows_and_regions_below_resolution(data: ReportData) -> None:
    text = "\n".join(data.warnings)
    assert (
        "kidneys: the bi fit failed the chi-square goodness-of-fit test (chi2 = 28.9 on 1 degree of" in text
    )
    assert "scaled by 5.38" in text  # sqrt(28.9/1)
    assert "lacrimal_glands: scan at 168 h is 4.20 effective half-lives" in text
    assert "below the camera's resolution" in text and "lacrimal_glands" in text
    assert "Not assessed in any region's budget" in text and "density" in text


def test_methods_and_references_follow_what_was_done() -> None:
    """Enlarged-VOI organ correction → MIRD 26 and the EANM 177Lu recommendations cited; without it, neither
    is. Single time point from the earlier cycle → Madsen; Hänscheid's estimate not used → not cited.
    Every cited [n] is a listed reference."""
    with_pvc = _data()
    text = " ".join(with_pvc.methods)
    assert "enlarged by 17.7 mm" in text and REFERENCES["mird26"] in with_pvc.references
    assert REFERENCES["madsen"] in with_pvc.references and REFERENCES["hanscheid"] not in with_pvc.references
    assert "tumour_1 were corrected for partial volume" in text
    assert "Regions came from a NIfTI label map;" in text
    cited = {int(n) for group in re.findall(r"\[([\d, ]+)\]", text) for n in group.split(",")}
    assert cited == set(range(1, len(with_pvc.references) + 1))
    without = _data(_record(organ_pvc=False))
    assert REFERENCES["mird26"] not in without.references
    assert "enlarged" not in " ".join(without.methods)


def test_header_has_calibration_camera_site_times_and_software(data: ReportData) -> None:
    header = dict(data.header)
    assert header["Calibration factor"].startswith(
        "5.67 ± 0.11 cps/MBq (2.0 %), measured 2029-12-30 10:00 CET"
    )
    assert header["Camera"] == "camera A, MEGP" and header["Software"] == "theradose 9.9"
    # administration 09:00 UTC = 10:00 CET; 168 h later, 13 January 10:00 CET
    assert header["Administered activity"] == "7 400 MBq at 2030-01-06 10:00 CET"
    assert "2030-01-13 10:00 CET (168.0 h)" in header["Imaging"]
    assert header["Times shown in"] == "site time zone Europe/Berlin"
    assert dict(data.provenance)["Output doses.json SHA-256"] == "5558039d"


def test_dvhs_are_small_multiples_of_at_most_eight_curves_on_a_linear_axis_from_zero() -> None:
    names = [f"organ_{i:02d}" for i in range(19)]
    regions = tuple(_region(n, RegionKind.ORGAN, 1.0 + 0.1 * i) for i, n in enumerate(names))
    regions += (_region("tumour_1", RegionKind.TUMOUR, 60.0), _region("tumour_2", RegionKind.TUMOUR, 3.0))
    data = _data(_record(regions=regions))
    panels = dvh_panels(data)
    assert all(len(p) <= MAX_CURVES_PER_PANEL for _t, p in panels)
    assert sorted(n for _t, p in panels for n in p) == sorted(r.name for r in regions)
    # 60 Gy and 3 Gy tumours are not squeezed onto one axis
    assert not any({"tumour_1", "tumour_2"} <= set(p) for _t, p in panels)
    fig = _figure(7.5, 9.0)
    draw_dvhs(fig, data, panels, (0.0, 0.0, 1.0, 1.0))
    for ax in fig.axes:
        assert ax.get_xscale() == "linear" and ax.get_xlim()[0] == 0.0
        colours = [line.get_color() for line in ax.get_lines()]
        styles = [(line.get_color(), line.get_linestyle()) for line in ax.get_lines()]
        assert len(set(colours)) == len(colours) and len(set(styles)) == len(styles)


def test_a_dvh_curve_drops_to_zero_volume_above_the_maximum_dose() -> None:
    """A DVH as the pipeline computes it ends at the maximum dose with the volume of the voxels holding it
    (here 1 of 6 voxels): the drawn curve steps from there to 0 % instead of stopping mid-axis."""
    import dataclasses

    from theradose.dosimetry.dvh import dose_volume_histogram

    dvh = dose_volume_histogram(np.array([10.0, 11.0, 12.0, 13.0, 15.0, 32.0]), n_bins=100)
    assert dvh.cumulative_fraction[-1] == pytest.approx(1 / 6)
    data = dataclasses.replace(
        _data(_record(regions=(_region("tumour_1", RegionKind.TUMOUR, 16.0),))),
        dvhs={"tumour_1": (dvh.dose_gy, dvh.cumulative_fraction)},
    )
    fig = _figure(7.5, 3.0)
    draw_dvhs(fig, data, dvh_panels(data), (0.0, 0.0, 1.0, 1.0))
    (line,) = fig.axes[0].get_lines()
    x, y = line.get_xdata(), line.get_ydata()
    assert (x[-2], y[-2]) == pytest.approx((32.0, 100 / 6)) and (x[-1], y[-1]) == (32.0, 0.0)


def test_mips_are_oriented_lettered_and_have_labelled_linear_colour_bars(data: ReportData) -> None:
    image = np.arange(6.0).reshape(2, 3)  # (slice, column)
    # columns running to the patient's right are flipped so that column 0 (shown left) is the right
    assert np.array_equal(oriented_mip(image, column_to_left=False, slice_to_superior=True), image[:, ::-1])
    assert np.array_equal(oriented_mip(image, column_to_left=True, slice_to_superior=False), image[::-1, :])
    fig = _figure(7.5, 5.0)
    draw_mips(fig, data, (0.0, 0.0, 1.0, 1.0))
    letters = sorted(t.get_text() for ax in fig.axes for t in ax.texts)
    assert letters == sorted("RLSI" * 2)
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert any("activity concentration (MBq/mL), linear" in label for label in labels)
    assert any("absorbed dose (Gy), linear" in label for label in labels)
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert all(type(im.norm).__name__ == "Normalize" and im.norm.vmin == 0.0 for im in images)


def test_html_is_self_contained_escaped_and_has_a_blank_sign_off(data: ReportData) -> None:
    text = render_html(data)
    assert "Doe^John &lt;P1&gt;" in text
    assert "http" not in "".join(text.split(REFERENCES["mird21"]))  # no external resources
    for title in ("Checked by (medical physicist)", "Approved by (physician)", "Warnings", "Provenance"):
        assert title in text
    assert text.count("<td>Name:</td>") == 3


def test_sign_off_is_filled_from_valid_e_signatures_only() -> None:
    from zoneinfo import ZoneInfo

    page = f"<html>{signoff_html()}</html>"
    signatures = [
        {"meaning": "checked", "signer": "anna", "signed_at": "2030-01-07T08:00:00Z", "valid": True},
        {
            "meaning": "approved",
            "signer": "ben <b>",
            "signed_at": "2030-01-07T09:30:00+00:00",
            "valid": False,
        },
    ]
    filled = fill_signoff(page, signatures, zone=ZoneInfo("Europe/Berlin"))
    assert "<td>anna</td>" in filled and "2030-01-07 09:00 CET" in filled
    assert "ben" not in filled and "not valid" in filled  # an invalid signature never fills a line
    assert filled.count("<td>Name:</td>") == 1  # prepared: not signed
    assert fill_signoff("<html>old report</html>", signatures) == "<html>old report</html>"


def _mediaboxes(pdf: bytes) -> list[tuple[float, float]]:
    return [
        (float(w) - float(x0), float(h) - float(y0))
        for x0, y0, w, h in re.findall(
            rb"/MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*\]", pdf
        )
    ]


def render_pages(pdf: Path, folder: Path, name: str) -> list[Path]:
    """Every page of ``pdf`` as a PNG (pdftoppm, poppler-utils), copied to ``.test-artefacts/report`` when
    THERADOSE_ARTEFACTS is set, so the pages can be looked at."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["pdftoppm", "-r", "60", "-png", str(pdf), str(folder / name)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, (
        f"pdftoppm failed (install poppler-utils: scripts/setup-system.sh): {done.stderr}"
    )
    pages = sorted(folder.glob(f"{name}*.png"))
    if os.environ.get("THERADOSE_ARTEFACTS"):
        target = Path(".test-artefacts") / "report"
        target.mkdir(parents=True, exist_ok=True)
        for page in pages:
            shutil.copy2(page, target / page.name)
    return pages


def test_every_pdf_page_is_a4_and_renders(data: ReportData, tmp_path: Path) -> None:
    path = write_pdf(data, tmp_path / "r.pdf")
    content = path.read_bytes()
    boxes = _mediaboxes(content)
    assert len(boxes) == len(re.findall(rb"/Type\s*/Page\b", content)) >= 6
    assert all(
        w == pytest.approx(A4_PT[0], abs=0.01) and h == pytest.approx(A4_PT[1], abs=0.01) for w, h in boxes
    )
    pages = render_pages(path, tmp_path / "png", "handmade")
    assert len(pages) == len(boxes)
