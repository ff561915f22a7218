"""The study pipeline on virtual patients, run as a Dask batch on a real scheduler with two workers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from theradose.population.batch import run_batch
from theradose.population.cohort import write_virtual_patient_studies
from theradose.population.registry import build_registry


@pytest.mark.dask
def test_pipeline_batch_on_virtual_patients(dask_scheduler: str, tmp_path: Path) -> None:
    studies = list(write_virtual_patient_studies(2, tmp_path / "patients", seed=1, grid=32))
    broken = tmp_path / "patients" / "broken.toml"
    broken.write_text(studies[0].read_text().replace("[[timepoints]]", "[[timepoint]]"))
    out = tmp_path / "batch"
    result = run_batch([*studies, broken], out, scheduler=dask_scheduler)
    assert sorted(result.done) == ["patient_1", "patient_2"]
    assert [f["study_id"] for f in result.failed] == ["broken"] and result.failed[0][
        "error_type"
    ] == "InputError"
    # each study's kidney dose against the phantom's truth (local engine vs truth: the pipeline's own
    # acceptance is 15 % for organs; the registry must carry the pipeline's numbers unchanged)
    frame = build_registry(out)
    for study in studies:
        sid = study.stem
        truth = json.loads((study.parent / sid / "truth" / "truth.json").read_text())
        doses = json.loads((out / sid / "doses.json").read_text())
        kidneys = next(r for r in doses["regions"] if r["name"] == "kidneys")
        row = frame[(frame.study_id == sid) & (frame.region == "kidneys")].iloc[0]
        assert kidneys["dose"]["source"] == "local"  # the virtual patients' study files name it
        assert row.dose_gy == kidneys["dose"]["dose_gy"] and row.bed_gy == kidneys["bed"]["bed_gy"]
        assert row.dose_gy == pytest.approx(truth["regions"]["kidneys"]["dose_gy"], rel=0.15)
    again = run_batch(studies, out, scheduler=dask_scheduler)
    assert sorted(again.skipped) == ["patient_1", "patient_2"] and again.done == []
