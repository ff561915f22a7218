"""Report building blocks on hand-made data: MIP, dose table, HTML and PDF content."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from theradose.dosimetry.results import (
    Administration,
    Bed,
    EngineDose,
    Patient,
    RegionKind,
    RegionResult,
    StudyDoses,
)
from theradose.report.data import REFERENCES, ReportData, TacPlot, coronal_mip
from theradose.report.figures import dose_table_rows
from theradose.report.html import render_html
from theradose.report.pdf import write_pdf

TAC = TacPlot(
    name="kidneys",
    time_h=(4.0, 24.0, 96.0),
    activity_mbq=(300.0, 200.0, 50.0),
    sigma_mbq=(15.0, 10.0, 2.5),
    curve_h=(0.0, 50.0, 100.0),
    curve_mbq=(320.0, 120.0, 45.0),
    model="bi",
    weights=(("mono", 0.2), ("bi", 0.8)),
)


def _record() -> StudyDoses:
    """A hand-made dose record: kidneys with a local and an organ-level dose (the reference) and a BED of
    the organ-level dose; a tumour without the organ-level dose (so without a reference dose)."""
    bed = Bed(3.9, 3.3, "organ", "kidney", 2.6, 2.8, 40.0, "test")
    return StudyDoses(
        patient=Patient("P1", "Doe^John <P1>"),
        cycle=1,
        administration=Administration("Lu-177", "177Lu-PSMA-617", 7400.0, datetime(2030, 1, 1, tzinfo=UTC)),
        reference_dose="organ",
        engines=("local",),
        regions=(
            RegionResult(
                "kidneys",
                RegionKind.ORGAN,
                (EngineDose("local", 3.21, 0.16), EngineDose("organ", 3.3, 0.17)),
                mass_g=312.5,
                tia_mbq_h=12000.0,
                tia_sigma_mbq_h=600.0,
                kinetics_model="bi",
                bed=bed,
            ),
            RegionResult(
                "tumour_1",
                RegionKind.TUMOUR,
                (EngineDose("local", 12.0, None),),
                mass_g=10.0,
                tia_mbq_h=900.0,
                kinetics_model="trapezoid",
            ),
        ),
    )


@pytest.fixture
def data() -> ReportData:
    spect = np.zeros((6, 5, 4))
    spect[2, 3, 1] = 7.0
    return ReportData(
        title="Dosimetry report — P1, cycle 1",
        header=(("Patient", "Doe^John <P1>"), ("Cycle", "1")),
        doses=_record(),
        tacs=(TAC,),
        spect_mip=coronal_mip(spect),
        dose_mip=coronal_mip(spect * 2.0),
        aspect=1.0,
        dvhs={"kidneys": ((0.0, 1.0, 2.0), (1.0, 0.5, 0.0))},
        dvh_source="local",
        methods=("Method paragraph.",),
    )


def test_coronal_mip_takes_the_maximum_over_rows() -> None:
    array = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4)
    mip = coronal_mip(array)
    assert mip.shape == (2, 4)
    # the last row (index 2) holds the largest values of this increasing array
    np.testing.assert_array_equal(mip, array[:, 2, :])


def test_dose_table_names_the_dose_and_shows_its_bed(data: ReportData) -> None:
    """The study's dose (organ MIRD here) comes first, named, with Gy/GBq (3.3 Gy / 7.4 GBq = 0.446) and
    the BED computed from it; the local engine is shown for comparison; a region without the reference
    dose shows none (no other dose stands in for it)."""
    header, rows = dose_table_rows(data)
    assert header[:4] == ["Region", "Mass (g)", "TIA (MBq·h)", "Model"]
    assert header[4:7] == ["Dose (organ MIRD, Gy)", "Gy/GBq", "BED of this dose (Gy)"]
    assert header[7] == "local engine (Gy)"
    assert rows[0][4:] == ["3.3 ± 0.17", "0.446", "3.9", "3.21 ± 0.16"]
    assert rows[1][2] == "900"  # no σ → value alone
    assert rows[1][4:] == ["—", "—", "—", "12"]


def test_html_is_self_contained_and_escaped(data: ReportData) -> None:
    text = render_html(data)
    assert "Doe^John &lt;P1&gt;" in text
    assert len(re.findall(r"src='data:image/png;base64,", text)) == 3
    assert "http" not in text.replace(REFERENCES[0], "")  # no external resources
    assert "Prepared by (medical physicist)" in text and "Approved by (physician)" in text
    for ref in REFERENCES:
        assert ref.replace("&", "&amp;") in text or ref in text


def test_pdf_has_five_pages(data: ReportData, tmp_path: Path) -> None:
    path = write_pdf(data, tmp_path / "r.pdf")
    content = path.read_bytes()
    assert content.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b", content)) == 5
