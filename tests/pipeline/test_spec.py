"""Study-file validation: every error is raised before any computation, in one line naming key and fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from theradose.errors import InputError
from theradose.pipeline import run as run_module
from theradose.pipeline.spec import load_study, parse_study, tissue_for

from .conftest import SyntheticStudy, study_toml_text


def _copy_study(study: SyntheticStudy, tmp_path: Path) -> Path:
    root = tmp_path / "study"
    shutil.copytree(study.root, root)
    return root


def _write(root: Path, text: str) -> Path:
    path = root / "study.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _expect(path: Path, *fragments: str) -> str:
    with pytest.raises(InputError) as info:
        load_study(path)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_valid_study_reads_every_section(synthetic_study: SyntheticStudy) -> None:
    spec = load_study(synthetic_study.study_toml)
    assert spec.patient.patient_id == "SYN-001"
    assert spec.administration.nuclide == "Lu-177"
    assert spec.administration.activity_mbq == 7400.0
    assert len(spec.timepoints) == 4
    assert spec.segmentation.regions["kidneys"] == (2,)
    assert spec.tumour_regions == ("tumour_1",)
    assert spec.dose.engines == ("local",)
    assert spec.formats[0] == "json"
    assert spec.tissue("kidney_left") == "kidney"
    assert spec.tissue("tumour_1") == "tumour"


def test_typo_in_key_names_the_key_and_the_fix(synthetic_study: SyntheticStudy, tmp_path: Path) -> None:
    root = _copy_study(synthetic_study, tmp_path)
    text = study_toml_text(root).replace("engines =", "enignes =")
    message = _expect(_write(root, text), "unknown key 'enignes' in [dose]", "did you mean 'engines'?")
    assert message.startswith("unknown key")


def test_typo_in_top_level_section(synthetic_study: SyntheticStudy, tmp_path: Path) -> None:
    root = _copy_study(synthetic_study, tmp_path)
    text = study_toml_text(root).replace("[kinetics]", "[kinetic]")
    _expect(_write(root, text), "unknown key 'kinetic' in the top level", "did you mean 'kinetics'?")


def test_typo_in_engine_value(synthetic_study: SyntheticStudy, tmp_path: Path) -> None:
    root = _copy_study(synthetic_study, tmp_path)
    _expect(_write(root, study_toml_text(root, engines='["lokal"]')), "dose.engines", "did you mean 'local'?")


def test_missing_timepoint_folder(synthetic_study: SyntheticStudy, tmp_path: Path) -> None:
    root = _copy_study(synthetic_study, tmp_path)
    shutil.rmtree(root / "tp_72h" / "spect")
    _expect(_write(root, study_toml_text(root)), "timepoints[3].spect", "does not exist", "check the path")


def test_inconsistent_syringe_activities(synthetic_study: SyntheticStudy, tmp_path: Path) -> None:
    root = _copy_study(synthetic_study, tmp_path)
    text = study_toml_text(root).replace(
        "activity_mbq = 7400", "activity_mbq = 7400\nsyringe_before_mbq = 6000\nsyringe_residual_mbq = 100"
    )
    _expect(_write(root, text), "inconsistent activities", "5900")


def test_activity_disagreeing_with_dicom_header(synthetic_study: SyntheticStudy, tmp_path: Path) -> None:
    root = _copy_study(synthetic_study, tmp_path)
    text = study_toml_text(root).replace("activity_mbq = 7400", "activity_mbq = 5000")
    _expect(_write(root, text), "inconsistent activities", "7400", "DICOM header")


def test_timepoint_before_administration(synthetic_study: SyntheticStudy, tmp_path: Path) -> None:
    root = _copy_study(synthetic_study, tmp_path)
    text = study_toml_text(root).replace("2025-03-03T10:00:00+00:00", "2025-03-03T16:00:00+00:00")
    _expect(_write(root, text), "time point 1", "before the administration")


def test_naive_datetime_is_refused() -> None:
    data = {
        "patient": {"id": "X"},
        "administration": {"nuclide": "Lu-177", "activity_mbq": 1.0, "datetime": "2025-01-01T09:00:00"},
    }
    with pytest.raises(InputError, match="no time zone"):
        parse_study(data, base_dir=Path("."))


def test_errors_come_before_any_computation(
    synthetic_study: SyntheticStudy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _copy_study(synthetic_study, tmp_path)
    path = _write(root, study_toml_text(root).replace("engines =", "enignes ="))

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("computation started")

    monkeypatch.setattr(run_module, "compute_study", fail)
    with pytest.raises(InputError, match="enignes"):
        run_module.run_study(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_default_tissues() -> None:
    assert tissue_for("kidneys", {}) == "kidney"
    assert tissue_for("parotid_left", {}) == "salivary_glands"
    assert tissue_for("spleen", {}) == "spleen"  # a tissue without LQ parameters: no BED
    assert tissue_for("lesion_2", {}) == "tumour"
    assert tissue_for("my_region", {}) is None
    assert tissue_for("liver_met_1", {}) is None  # no longer read as liver by a name fragment
    assert tissue_for("spleen", {"spleen": "liver"}) == "liver"


def test_unknown_tissue_is_refused(synthetic_study: SyntheticStudy, tmp_path: Path) -> None:
    root = _copy_study(synthetic_study, tmp_path)
    text = study_toml_text(root, extra='\n[radiobiology]\ntissues = { liver = "livr" }\n')
    _expect(_write(root, text), "radiobiology.tissues.liver = 'livr' is unknown", "kidney")


def test_organ_pvc_options(synthetic_study: SyntheticStudy, tmp_path: Path) -> None:
    root = _copy_study(synthetic_study, tmp_path)
    base = study_toml_text(root)
    ok = base + '\n[pvc]\norgans = "enlarged_voi"\nmargin_mm = 15.0\norgan_regions = ["kidneys"]\n'
    pvc = load_study(_write(root, ok)).pvc
    assert (pvc.organs, pvc.margin_mm, pvc.organ_regions, pvc.enabled) == (
        "enlarged_voi",
        15.0,
        ("kidneys",),
        False,
    )
    _expect(
        _write(root, base + '\n[pvc]\norgans = "enlarged_voi"\norgan_regions = ["kidneys"]\n'),
        "pvc.margin_mm",
    )
    _expect(_write(root, base + '\n[pvc]\norgans = "enlarged_voi"\nmargin_mm = 15.0\n'), "pvc.organ_regions")
    _expect(
        _write(root, base + '\n[pvc]\norgans = "enlarged"\nmargin_mm = 15.0\n'), "pvc.organs", "enlarged_voi"
    )
    _expect(
        _write(
            root, base + '\n[pvc]\norgans = "enlarged_voi"\nmargin_mm = 15.0\norgan_regions = ["kidny"]\n'
        ),
        "pvc.organ_regions names 'kidny'",
    )
