"""Report building blocks on hand-made data: MIP, dose table, HTML and PDF content."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

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


@pytest.fixture
def data() -> ReportData:
    doses = {
        "engines": ["local"],
        "regions": [
            {
                "name": "kidneys",
                "mass_g": 312.5,
                "tia_mbq_h": 12000.0,
                "tia_sigma_mbq_h": 600.0,
                "kinetics_model": "bi",
                "doses": {"local": {"dose_gy": 3.21, "dose_sigma_gy": 0.16, "dose_gy_per_gbq": 0.434}},
                "organ_dose": {"dose_gy": 3.3, "dose_sigma_gy": 0.17},
                "bed_gy": 3.9,
            },
            {
                "name": "tumour_1",
                "mass_g": 10.0,
                "tia_mbq_h": 900.0,
                "tia_sigma_mbq_h": None,
                "kinetics_model": "trapezoid",
                "doses": {"local": {"dose_gy": 12.0, "dose_sigma_gy": None, "dose_gy_per_gbq": 1.62}},
                "bed_gy": None,
            },
        ],
    }
    spect = np.zeros((6, 5, 4))
    spect[2, 3, 1] = 7.0
    return ReportData(
        title="Dosimetry report — P1, cycle 1",
        header=(("Patient", "Doe^John <P1>"), ("Cycle", "1")),
        doses=doses,
        tacs=(TAC,),
        spect_mip=coronal_mip(spect),
        dose_mip=coronal_mip(spect * 2.0),
        aspect=1.0,
        dvhs={"kidneys": ((0.0, 1.0, 2.0), (1.0, 0.5, 0.0))},
        methods=("Method paragraph.",),
    )


def test_coronal_mip_takes_the_maximum_over_rows() -> None:
    array = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4)
    mip = coronal_mip(array)
    assert mip.shape == (2, 4)
    # the last row (index 2) holds the largest values of this increasing array
    np.testing.assert_array_equal(mip, array[:, 2, :])


def test_dose_table_formats_values_and_missing_uncertainties(data: ReportData) -> None:
    header, rows = dose_table_rows(data)
    assert header[:4] == ["Region", "Mass (g)", "TIA (MBq·h)", "Model"]
    assert rows[0][4] == "3.21 ± 0.16"
    assert rows[0][-1] == "3.9"
    assert rows[1][2] == "900"  # no σ → value alone
    assert rows[1][-2] == "—" and rows[1][-1] == "—"


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
