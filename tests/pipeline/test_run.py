"""End-to-end runs of the pipeline on the synthetic study: outputs, numbers, cache, atomicity, CLI."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from theradose.errors import InputError
from theradose.pipeline import run as run_module
from theradose.pipeline.run import run_study

from .conftest import REGIONS, SOFT_TISSUE_HU, SPACING_MM, TIMES_H, SyntheticStudy, study_toml_text

#: Lu-177 mean electron energy per decay (β⁻ + conversion + Auger), MeV, ICRP 107: 0.14797 β + IC/Auger
#: ≈ 0.1479 MeV; used with a 0.3 % tolerance.
LU177_ELECTRON_MEV = 0.1479
#: Lu-177 photon (γ + X) energy per decay, MeV, ICRP 107 (≈ 0.0355 MeV; upper bound here).
LU177_PHOTON_MEV = 0.036
MEV_TO_J = 1.602176634e-13
#: Density of the synthetic study's soft tissue (40 HU) on the default calibration:
#: 1 + 40·(1.05 − 1)/43 g/mL (water – ICRU-44 muscle segment of the default calibration).
SOFT_TISSUE_DENSITY = 1.0 + SOFT_TISSUE_HU * (1.05 - 1.0) / 43.0
JSON_ONLY = '\n[output]\nformats = ["json"]\n'


@pytest.fixture(scope="module")
def first_run(synthetic_study: SyntheticStudy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    run_study(synthetic_study.study_toml, out)
    return out


def test_all_outputs_are_written(first_run: Path) -> None:
    names = {p.name for p in first_run.iterdir()}
    expected = {
        "doses.json", "doses.csv", "dose_local.nii.gz", "dose_local.dcm", "segmentation.dcm",
        "report.html", "report.pdf", "provenance.json", "tia_mbq_h.nii.gz",
    }  # fmt: skip
    assert expected <= names
    assert (first_run / "report.pdf").read_bytes().startswith(b"%PDF")
    html = (first_run / "report.html").read_text(encoding="utf-8")
    for section in ("SYN-001", "Time-activity curves", "Dose-volume histograms", "References", "Sign-off"):
        assert section in html
    provenance = json.loads((first_run / "provenance.json").read_text(encoding="utf-8"))
    assert provenance["outputs"][0] == "doses.json"
    assert any(k.endswith("NM_0001.dcm") for k in provenance["inputs_sha256"])
    assert provenance["versions"]["numpy"]


def test_region_doses_match_the_analytic_values(synthetic_study: SyntheticStudy, first_run: Path) -> None:
    """D = (A0/λ_eff)·3600 s/h·10⁶ Bq/MBq·E_e / m with m = n_voxels·voxel mL·ρ(40 HU)."""
    doses = json.loads((first_run / "doses.json").read_text(encoding="utf-8"))
    by_name = {r["name"]: r for r in doses["regions"]}
    voxel_ml = SPACING_MM**3 / 1000.0
    for name, (_label, _c, _r, a0, teff) in REGIONS.items():
        tia = a0 * teff / math.log(2)
        mass_g = synthetic_study.n_voxels[name] * voxel_ml * SOFT_TISSUE_DENSITY
        dose = tia * 3600.0 * 1e6 * LU177_ELECTRON_MEV * MEV_TO_J / (mass_g / 1000.0)
        row = by_name[name]
        assert row["tia_mbq_h"] == pytest.approx(tia, rel=2e-3)
        assert row["mass_g"] == pytest.approx(mass_g, rel=1e-3)
        assert row["doses"]["local"]["dose_gy"] == pytest.approx(dose, rel=4e-3)
        # MIRD organ/sphere self-dose: all electrons (≥ 97 % for the 33 mL sphere) plus part of the photons
        # (Lu-177 photon energy ≈ 0.036 MeV per decay, ICRP 107): bounded by electrons alone and by
        # electrons plus every photon absorbed.
        organ_dose = row["doses"]["organ"]["dose_gy"]
        assert 0.97 * dose <= organ_dose <= dose * (1.0 + LU177_PHOTON_MEV / LU177_ELECTRON_MEV)
        assert row["doses"]["local"]["dose_gy_per_gbq"] == pytest.approx(dose / 7.4, rel=4e-3)
        assert row["kinetics_model"] in ("mono", "bi")
    # BED of a mono-exponential dose rate (Dale 1985): D·(1 + G·D/(α/β)), G = T_rep/(T_rep + T_eff);
    # liver α/β 2.5 Gy, T_rep 2.5 h; kidney α/β 2.6 Gy, T_rep 2.8 h (tissue registry). D is the region's
    # dose printed next to it: the study's reference dose (the organ-level MIRD dose by default).
    assert doses["reference_dose"] == "organ"
    for name, alpha_beta, t_rep in (("liver", 2.5, 2.5), ("kidney_left", 2.6, 2.8)):
        shown = by_name[name]["dose"]
        assert shown["source"] == "organ" and shown["dose_gy"] == by_name[name]["doses"]["organ"]["dose_gy"]
        dose = shown["dose_gy"]
        g = t_rep / (t_rep + REGIONS[name][4])
        bed = by_name[name]["bed"]
        assert bed["bed_gy"] == pytest.approx(dose * (1 + g * dose / alpha_beta), rel=2e-3)
        assert (bed["dose_gy"], bed["dose_source"]) == (dose, "organ")
        assert (bed["alpha_beta_gy"], bed["repair_half_time_h"]) == (alpha_beta, t_rep)
    assert by_name["tumour_1"]["tissue"] == "tumour"
    assert by_name["kidneys"]["doses"]["local"]["dose_gy"] == pytest.approx(
        by_name["kidney_left"]["doses"]["local"]["dose_gy"], rel=1e-9
    )
    csv_lines = (first_run / "doses.csv").read_text(encoding="utf-8").splitlines()
    assert csv_lines[0].startswith("region,kind,mass_g")
    assert len(csv_lines) == 1 + len(doses["regions"])


def test_rerun_reproduces_doses_json_and_hits_the_cache(
    synthetic_study: SyntheticStudy, first_run: Path
) -> None:
    before = (first_run / "doses.json").read_bytes()
    result = run_study(synthetic_study.study_toml, first_run)
    assert (first_run / "doses.json").read_bytes() == before
    assert result.cache_misses == ()
    assert {"load", "register", "masks", "fit", "tia", "dose"} <= set(result.cache_hits)


def test_a_change_recomputes_only_downstream_steps(synthetic_study: SyntheticStudy, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cache = tmp_path / "cache"
    base = synthetic_study.root / "study_json.toml"
    base.write_text(study_toml_text(synthetic_study.root, extra=JSON_ONLY), encoding="utf-8")
    run_study(base, out, cache_dir=cache)
    changed = synthetic_study.root / "study_stp.toml"
    changed.write_text(
        study_toml_text(synthetic_study.root, extra=JSON_ONLY).replace(
            'model = "auto"', 'model = "auto"\nsingle_timepoint = "hanscheid"\nstp_timepoint = 3'
        ),
        encoding="utf-8",
    )
    result = run_study(changed, out, cache_dir=cache)
    assert set(result.cache_hits) == {"load", "register", "masks"}
    assert {"fit", "tia", "dose"} <= set(result.cache_misses)


def test_interrupted_run_leaves_no_complete_looking_output(
    synthetic_study: SyntheticStudy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"

    def boom(step: str) -> None:
        if step == "provenance":
            raise KeyboardInterrupt

    study = synthetic_study.root / "study_interrupt.toml"
    study.write_text(study_toml_text(synthetic_study.root, extra=JSON_ONLY), encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        run_study(study, out, on_step=boom)
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert not any(name.startswith(".out.partial") for name in leftovers)
    assert not (out / "doses.json").exists()
    assert not (out / "provenance.json").exists()


def test_interrupted_rerun_keeps_the_previous_complete_output(
    synthetic_study: SyntheticStudy, first_run: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "copy"
    shutil.copytree(first_run, out)
    before = (out / "doses.json").read_bytes()

    def broken_report(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    import theradose.report

    monkeypatch.setattr(theradose.report, "write_pdf", broken_report)
    with pytest.raises(RuntimeError, match="disk full"):
        run_study(synthetic_study.study_toml, out)
    assert (out / "doses.json").read_bytes() == before
    assert (out / "provenance.json").is_file()


def test_out_dir_with_foreign_content_is_refused(synthetic_study: SyntheticStudy, tmp_path: Path) -> None:
    from theradose.errors import InputError

    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(InputError, match="not a theradose output folder"):
        run_study(synthetic_study.study_toml, out)


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from theradose.cli import main

    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_run_json_prints_doses_json(
    synthetic_study: SyntheticStudy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = synthetic_study.root / "study_json_only.toml"
    study.write_text(study_toml_text(synthetic_study.root, extra=JSON_ONLY), encoding="utf-8")
    out = tmp_path / "out"
    code, stdout, _err = _cli(capsys, "run", str(study), "--out", str(out), "--json")
    assert code == 0
    assert json.loads(stdout) == json.loads((out / "doses.json").read_text(encoding="utf-8"))
    assert sorted(p.name for p in out.iterdir()) == [".cache", "doses.json", "dvh.json", "provenance.json"]


def test_cli_bad_study_exits_2_with_one_line(
    synthetic_study: SyntheticStudy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = synthetic_study.root / "study_typo.toml"
    study.write_text(
        study_toml_text(synthetic_study.root).replace("engines =", "enignes ="), encoding="utf-8"
    )
    code, stdout, err = _cli(capsys, "run", str(study), "--out", str(tmp_path / "out"), "--json")
    assert code == 2
    assert stdout == ""
    assert err.strip().splitlines() == ["error: unknown key 'enignes' in [dose]; did you mean 'engines'?"]


def test_cli_missing_study_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = _cli(capsys, "run", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "o"), "--json")
    assert code == 2
    assert "does not exist" in err


def test_cli_demo_rejects_other_grids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = _cli(capsys, "demo", "--out", str(tmp_path / "d"), "--grid", "96", "--json")
    assert code == 2
    assert "--grid must be 64 or 128" in err


def test_cli_benchmark_rejects_zero_patients(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = _cli(capsys, "benchmark", "--patients", "0", "--out", str(tmp_path / "b"), "--json")
    assert code == 2
    assert "--patients must be >= 1" in err


def test_compute_is_deterministic_without_cache(synthetic_study: SyntheticStudy, first_run: Path) -> None:
    from theradose.pipeline.cache import StepCache
    from theradose.pipeline.spec import load_study

    results = run_module.compute_study(load_study(synthetic_study.study_toml), cache=StepCache(None))
    assert results.doses.to_json() == (first_run / "doses.json").read_text(encoding="utf-8")


def test_rigid_registration_of_an_unmoved_patient_keeps_the_doses(
    synthetic_study: SyntheticStudy, first_run: Path, tmp_path: Path
) -> None:
    study = synthetic_study.root / "study_rigid.toml"
    study.write_text(
        study_toml_text(synthetic_study.root, extra=JSON_ONLY + '\n[registration]\nmethod = "rigid"\n'),
        encoding="utf-8",
    )
    result = run_study(study, tmp_path / "out", use_cache=False)
    reference = json.loads((first_run / "doses.json").read_text(encoding="utf-8"))
    assert result.doses.to_dict()["registration"]["method"] == "rigid"
    for got, want in zip(result.doses.to_dict()["regions"], reference["regions"], strict=True):
        assert got["doses"]["local"]["dose_gy"] == pytest.approx(want["doses"]["local"]["dose_gy"], rel=0.02)


def test_written_seg_segments_a_second_run_identically(
    synthetic_study: SyntheticStudy, first_run: Path, tmp_path: Path
) -> None:
    """segmentation.dcm of a run, read back as the segmentation source, reproduces the region doses."""
    extra = JSON_ONLY
    text = study_toml_text(synthetic_study.root, extra=extra)
    text = text.replace('source = "nifti"', 'source = "seg"').replace(
        'path = "labels.nii.gz"', f'path = "{first_run / "segmentation.dcm"}"'
    )
    old_regions = "liver = 1\nkidney_left = 2\ntumour_1 = 3\nkidneys = [2]"
    new_regions = 'liver = "liver"\nkidney_left = "kidney_left"\ntumour_1 = "tumour_1"\nkidneys = ["kidneys"]'
    text = text.replace(old_regions, new_regions)
    study = synthetic_study.root / "study_seg.toml"
    study.write_text(text, encoding="utf-8")
    result = run_study(study, tmp_path / "out", use_cache=False)
    reference = {
        r["name"]: r for r in json.loads((first_run / "doses.json").read_text(encoding="utf-8"))["regions"]
    }
    for row in result.doses.to_dict()["regions"]:
        assert row["mass_g"] == pytest.approx(reference[row["name"]]["mass_g"], rel=1e-6)
        assert row["doses"]["local"]["dose_gy"] == pytest.approx(
            reference[row["name"]]["doses"]["local"]["dose_gy"], rel=1e-4
        )


def test_partial_volume_correction_scales_the_tumour_tia(
    synthetic_study: SyntheticStudy, first_run: Path, tmp_path: Path
) -> None:
    """A flat recovery of 0.5 with no background around the tumour doubles its TIA and dose, nothing else."""
    curve = tmp_path / "rc.json"
    curve.write_text(
        json.dumps({"rc_inf": 0.5, "v50_ml": 1e-6, "slope": 1.0, "v_min_ml": 0.1, "v_max_ml": 50.0})
    )
    extra = JSON_ONLY + f'\n[pvc]\nenabled = true\nrecovery_curve = "{curve}"\n'
    study = synthetic_study.root / "study_pvc.toml"
    study.write_text(study_toml_text(synthetic_study.root, extra=extra), encoding="utf-8")
    result = run_study(study, tmp_path / "out", use_cache=False)
    before = {
        r["name"]: r for r in json.loads((first_run / "doses.json").read_text(encoding="utf-8"))["regions"]
    }
    after = {r["name"]: r for r in result.doses.to_dict()["regions"]}
    assert after["tumour_1"]["tia_mbq_h"] == pytest.approx(2 * before["tumour_1"]["tia_mbq_h"], rel=1e-4)
    assert after["tumour_1"]["recovery_coefficient"] == pytest.approx(0.5)
    assert after["tumour_1"]["doses"]["local"]["dose_gy"] == pytest.approx(
        2 * before["tumour_1"]["doses"]["local"]["dose_gy"], rel=1e-4
    )
    assert after["liver"]["tia_mbq_h"] == before["liver"]["tia_mbq_h"]


def test_every_engine_runs_and_mc_is_reproducible(
    synthetic_study: SyntheticStudy, first_run: Path, tmp_path: Path
) -> None:
    """vsv and mc add photon cross-dose to the local electron dose: for the 380 mL liver the region dose
    lies between the electron-only dose and electrons plus every photon absorbed (ICRP 107 energies)."""
    study = synthetic_study.root / "study_engines.toml"
    study.write_text(
        study_toml_text(synthetic_study.root, engines='["local", "vsv", "mc"]', extra=JSON_ONLY).replace(
            "[dose]", "[dose]\nmc_photons = 20000"
        ),
        encoding="utf-8",
    )
    first = run_study(study, tmp_path / "a", use_cache=False)
    again = run_study(study, tmp_path / "b", use_cache=False)
    assert (tmp_path / "a" / "doses.json").read_bytes() == (tmp_path / "b" / "doses.json").read_bytes()
    liver = {r["name"]: r for r in first.doses.to_dict()["regions"]}["liver"]["doses"]
    local = liver["local"]["dose_gy"]
    for engine in ("vsv", "mc"):
        assert (
            0.95 * local <= liver[engine]["dose_gy"] <= local * (1.0 + LU177_PHOTON_MEV / LU177_ELECTRON_MEV)
        )
    assert again.doses.to_dict()["engines"] == ["local", "vsv", "mc"]


def test_timepoints_in_any_order_refer_to_the_listed_position(
    synthetic_study: SyntheticStudy, tmp_path: Path
) -> None:
    """stp_timepoint counts in the study file's order; listing the scans backwards changes nothing."""
    stp = 'model = "auto"\nsingle_timepoint = "hanscheid"\nstp_timepoint = {}'
    forward = synthetic_study.root / "study_forward.toml"
    forward.write_text(
        study_toml_text(synthetic_study.root, extra=JSON_ONLY).replace('model = "auto"', stp.format(3)),
        encoding="utf-8",
    )
    backward = synthetic_study.root / "study_backward.toml"
    backward.write_text(
        study_toml_text(synthetic_study.root, extra=JSON_ONLY, times=tuple(reversed(TIMES_H))).replace(
            'model = "auto"', stp.format(2)
        ),
        encoding="utf-8",
    )
    a = run_study(forward, tmp_path / "a", use_cache=False).doses.to_dict()["regions"]
    b = run_study(backward, tmp_path / "b", use_cache=False).doses.to_dict()["regions"]
    assert [r["tia_mbq_h"] for r in a] == [r["tia_mbq_h"] for r in b]
    # Hänscheid: Ã = 2·A(t)·t/ln 2 at t = 72 h (Hänscheid et al. 2018, J Nucl Med 59:75)
    _label, _c, _r, a0, teff = REGIONS["liver"]
    activity = a0 * math.exp(-math.log(2) / teff * 72.0)
    assert a[0]["tia_mbq_h"] == pytest.approx(2 * activity * 72.0 / math.log(2), rel=2e-3)


def test_rtstruct_segmentation_gives_the_label_map_doses(
    synthetic_study: SyntheticStudy, first_run: Path, tmp_path: Path
) -> None:
    """Regions drawn as RTSTRUCT contours (from the same masks) give the same masses and doses within 5 %."""
    from theradose.imaging.volume import Volume
    from theradose.io.dicom import read_series
    from theradose.io.masks import write_rtstruct

    ct_files = sorted((synthetic_study.root / "tp_4h" / "ct").glob("*.dcm"))
    ct = read_series(ct_files)
    masks = {
        name: Volume(synthetic_study.labels == label, ct.affine, "label", frame_uid=ct.frame_uid)
        for name, (label, *_rest) in REGIONS.items()
    }
    rtstruct = write_rtstruct(masks, tmp_path / "rs.dcm", reference_files=ct_files, algorithm_type="MANUAL")
    text = study_toml_text(synthetic_study.root, extra=JSON_ONLY)
    text = text.replace('source = "nifti"', 'source = "rtstruct"').replace(
        'path = "labels.nii.gz"', f'path = "{rtstruct}"'
    )
    old_regions = "liver = 1\nkidney_left = 2\ntumour_1 = 3\nkidneys = [2]"
    text = text.replace(old_regions, 'liver = []\nkidney_left = []\ntumour_1 = []\nkidneys = ["kidney_left"]')
    study = synthetic_study.root / "study_rtstruct.toml"
    study.write_text(text, encoding="utf-8")
    result = run_study(study, tmp_path / "out", use_cache=False)
    previous = json.loads((first_run / "doses.json").read_text(encoding="utf-8"))
    reference = {r["name"]: r for r in previous["regions"]}
    for row in result.doses.to_dict()["regions"]:
        assert row["mass_g"] == pytest.approx(reference[row["name"]]["mass_g"], rel=0.05)
        assert row["doses"]["local"]["dose_gy"] == pytest.approx(
            reference[row["name"]]["doses"]["local"]["dose_gy"], rel=0.05
        )


def test_auto_segmentation_finds_the_uptake_regions(synthetic_study: SyntheticStudy, tmp_path: Path) -> None:
    text = study_toml_text(synthetic_study.root, extra=JSON_ONLY)
    text = text.replace('source = "nifti"\npath = "labels.nii.gz"\ntumours = ["tumour_1"]', 'source = "auto"')
    text = text[: text.index("[segmentation.regions]")] + text[text.index("[kinetics]") :]
    study = synthetic_study.root / "study_auto.toml"
    study.write_text(text, encoding="utf-8")
    result = run_study(study, tmp_path / "out", use_cache=False)
    names = [r["name"] for r in result.doses.to_dict()["regions"]]
    assert len(names) >= 3
    assert all(r["doses"]["local"]["dose_gy"] > 0 for r in result.doses.to_dict()["regions"])


def test_organ_enlarged_voi_leaves_a_sharp_image_unchanged(
    synthetic_study: SyntheticStudy, first_run: Path, tmp_path: Path
) -> None:
    """The synthetic SPECT has no blur and no activity outside the regions: every margin band and shell
    holds 0 MBq, so the enlarged-VOI correction must change no TIA and report recovery 1."""
    extra = (
        JSON_ONLY
        + '\n[pvc]\norgans = "enlarged_voi"\nmargin_mm = 16.0\norgan_regions = ["liver", "kidneys"]\n'
    )
    study = synthetic_study.root / "study_organ_pvc.toml"
    study.write_text(study_toml_text(synthetic_study.root, extra=extra), encoding="utf-8")
    result = run_study(study, tmp_path / "out", use_cache=False)
    before = {
        r["name"]: r for r in json.loads((first_run / "doses.json").read_text(encoding="utf-8"))["regions"]
    }
    for row in result.doses.to_dict()["regions"]:
        assert row["tia_mbq_h"] == pytest.approx(before[row["name"]]["tia_mbq_h"], rel=1e-9)
        assert row["recovery_coefficient"] == pytest.approx(1.0)
    organ_pvc = result.doses.to_dict()["organ_partial_volume_correction"]
    assert (organ_pvc["method"], organ_pvc["margin_mm"]) == ("enlarged_voi", 16.0)
    assert organ_pvc["regions"]  # the corrected organs are named (the report's Methods list them)


def test_one_kidney_dose_and_bed_on_every_reader(first_run: Path, tmp_path: Path) -> None:
    """doses.json, doses.csv, the report, the review store, the planner and the registry export show the
    same kidney dose, named by its source, and the BED computed from that very dose: every reader goes
    through the one record class."""
    import csv
    import re
    import shutil

    from theradose.planning import read_doses_json
    from theradose.population.registry import export_registry, read_registry
    from theradose.report.numbers import plus_minus
    from theradose.service.review_store import read_result

    raw = json.loads((first_run / "doses.json").read_text(encoding="utf-8"))
    kidney = next(r for r in raw["regions"] if r["name"] == "kidney_left")
    source, dose, bed = raw["reference_dose"], kidney["dose"]["dose_gy"], kidney["bed"]["bed_gy"]
    assert source == "organ" and kidney["bed"]["dose_gy"] == dose and kidney["bed"]["dose_source"] == source
    html = (first_run / "report.html").read_text(encoding="utf-8")
    assert "<th>Dose (organ MIRD) (Gy)</th><th>u (%)</th><th>Gy/GBq</th><th>BED (Gy)</th>" in html
    cells = re.search(r"<tr><td>kidney_left</td>(.*?)</tr>", html)
    assert cells is not None
    values = re.findall(r"<td[^>]*>([^<]*)</td>", cells.group(1))
    region = next(r for r in raw["regions"] if r["name"] == "kidney_left")
    sigma, bed_sigma = region["dose"]["dose_sigma_gy"], region["uncertainty"]["bed_sigma_gy"]
    assert sigma == region["uncertainty"]["dose_sigma_gy"]  # the dose carries its budget's σ
    assert values[2] == plus_minus(dose, sigma) and values[5] == plus_minus(bed, bed_sigma)
    with (first_run / "doses.csv").open(encoding="utf-8") as handle:
        row = next(r for r in csv.DictReader(handle) if r["region"] == "kidney_left")
    assert (row["dose_source"], float(row["dose_gy"]), float(row["bed_gy"])) == (source, dose, bed)
    review = next(r for r in read_result(first_run).regions if r.name == "kidney_left")
    assert (read_result(first_run).dose_source, review.dose_gy, review.bed_gy) == (source, dose, bed)
    _activity, regions = read_doses_json(first_run / "doses.json")
    planned = next(r for r in regions if r.name == "kidney_left")
    assert planned.source == source and planned.dose_gy_per_gbq * 7.4 == pytest.approx(dose, rel=1e-6)
    (tmp_path / "batch" / "study_1").mkdir(parents=True)
    shutil.copy(first_run / "doses.json", tmp_path / "batch" / "study_1" / "doses.json")
    export_registry(tmp_path / "batch", tmp_path / "registry.parquet")
    frame = read_registry(tmp_path / "registry.parquet")
    exported = frame[frame.region == "kidney_left"].iloc[0]
    assert (exported.dose_source, exported.dose_gy, exported.bed_gy) == (source, dose, bed)


@pytest.mark.parametrize(
    ("value", "message"),
    [("7", "--only-patients 7: choose seeds between 1 and --patients 6"), ("x", "comma-separated seeds")],
)
def test_cli_benchmark_rejects_seeds_outside_the_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    out = tmp_path / "b"
    code, _out, err = _cli(capsys, "benchmark", "--only-patients", value, "--out", str(out), "--json")
    assert code == 2
    assert message in err
    assert not out.exists()  # rejected before anything is written


def test_single_time_point_of_cycle_2_uses_the_earlier_cycle_fit_with_the_window_warning(
    synthetic_study: SyntheticStudy, first_run: Path, tmp_path: Path
) -> None:
    """Cycle 2 imaged once, at 168 h, with the same kinetics: scaled to the patient's own cycle-1 curve, each
    region's TIA is the analytic A0·T/ln 2 (mono-exponential regions); Hänscheid's estimate 2t/ln 2·A(t)
    is off by 2x·2^-x − 1 (x = t/T): kidney (T 40 h, x 4.2) −54.3 %. The kidney scan lies outside 0.75–2.5
    half-lives: flagged, with the warning in doses.json and the report."""
    earlier = first_run / "doses.json"
    kinetics = (
        '[kinetics]\nsingle_timepoint = "earlier_cycle"\nstp_timepoint = 1\n'
        f"earlier_cycle = {json.dumps(str(earlier))}\n"
    )
    text = study_toml_text(synthetic_study.root, times=(168.0,)).replace("cycle = 1", "cycle = 2")
    study = synthetic_study.root / "cycle2.toml"
    study.write_text(text.replace('[kinetics]\nmodel = "auto"\n', kinetics), encoding="utf-8")
    result = run_study(study, tmp_path / "c2")
    hanscheid_text = text.replace(
        '[kinetics]\nmodel = "auto"\n', '[kinetics]\nsingle_timepoint = "hanscheid"\nstp_timepoint = 1\n'
    )
    (synthetic_study.root / "cycle2_hanscheid.toml").write_text(hanscheid_text, encoding="utf-8")
    plain = run_study(synthetic_study.root / "cycle2_hanscheid.toml", tmp_path / "h", use_cache=False)
    for name, (_l, _c, _r, a0, teff) in REGIONS.items():
        truth = a0 * teff / math.log(2)
        region = result.doses.region(name)
        assert region.kinetics is not None and region.kinetics.model == "stp-earlier-cycle"
        own = region.tia_mbq_h
        population = plain.doses.region(name).tia_mbq_h
        assert own is not None and population is not None
        x = 168.0 / teff
        print(
            f"{name}: earlier-cycle {100 * (own / truth - 1):+.2f} %, "
            f"Hänscheid {100 * (population / truth - 1):+.2f} % "
            f"(2x·2^-x − 1 = {100 * (2 * x * 2**-x - 1):+.2f} %)"
        )
        assert own == pytest.approx(truth, rel=0.01)
        assert population == pytest.approx(truth * 2 * x * 2**-x, rel=0.01)
    kidney = result.doses.region("kidney_left")
    assert kidney.kinetics is not None and "stp_time_outside_window" in kidney.kinetics.flags
    assert "stp_time_outside_window" not in result.doses.region("tumour_1").all_flags  # x = 168/90 = 1.87
    html = (tmp_path / "c2" / "report.html").read_text(encoding="utf-8")
    assert "kidney_left: scan at 168 h is 4.20 effective half-lives" in html.replace("&#x27;", "'")


def test_an_earlier_cycle_of_another_patient_or_a_later_cycle_is_refused(
    synthetic_study: SyntheticStudy, first_run: Path, tmp_path: Path
) -> None:
    from theradose.pipeline.spec import load_study

    earlier = first_run / "doses.json"
    kinetics = f'[kinetics]\nsingle_timepoint = "earlier_cycle"\nearlier_cycle = {json.dumps(str(earlier))}\n'
    text = study_toml_text(synthetic_study.root, times=(168.0,)).replace(
        '[kinetics]\nmodel = "auto"\n', kinetics
    )
    same_cycle = synthetic_study.root / "same_cycle.toml"
    same_cycle.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match="is of cycle 1, not earlier than this cycle 1"):
        load_study(same_cycle)
    other = synthetic_study.root / "other_patient.toml"
    other.write_text(text.replace('id = "SYN-001"', 'id = "SYN-999"').replace("cycle = 1", "cycle = 2"))
    with pytest.raises(InputError, match="is of patient 'SYN-001', not 'SYN-999'"):
        load_study(other)
    missing = synthetic_study.root / "missing_earlier.toml"
    missing.write_text(
        text.replace(f"earlier_cycle = {json.dumps(str(earlier))}\n", "").replace("cycle = 1", "cycle = 2")
    )
    with pytest.raises(InputError, match=r"needs kinetics\.earlier_cycle"):
        load_study(missing)


def test_a_region_fitted_with_its_own_kinetics_model(synthetic_study: SyntheticStudy, tmp_path: Path) -> None:
    """``[kinetics.models]`` fits the liver by the hybrid trapezoid + late mono-exponential while the other
    regions keep ``auto``. Hand calculation for the liver's A0·e^(−λt) at 4, 24, 72, 168 h: triangle
    0-4 h, trapezoid 4-24 h, then A(24 h)/λ."""
    study = synthetic_study.root / "study_models.toml"
    study.write_text(
        study_toml_text(synthetic_study.root, extra=JSON_ONLY).replace(
            'model = "auto"\n', 'model = "auto"\n\n[kinetics.models]\nliver = "trapezoid_mono"\n'
        ),
        encoding="utf-8",
    )
    run_study(study, tmp_path / "out", cache_dir=tmp_path / "cache")
    by_name = {r["name"]: r for r in json.loads((tmp_path / "out" / "doses.json").read_text())["regions"]}
    _label, _c, _r, a0, teff = REGIONS["liver"]
    lam = math.log(2.0) / teff
    a4, a24 = a0 * math.exp(-lam * TIMES_H[0]), a0 * math.exp(-lam * TIMES_H[1])
    expected = 0.5 * TIMES_H[0] * a4 + 0.5 * (TIMES_H[1] - TIMES_H[0]) * (a4 + a24) + a24 / lam
    assert by_name["liver"]["kinetics_model"] == "trapezoid_mono"
    assert by_name["liver"]["tia_mbq_h"] == pytest.approx(expected, rel=2e-3)
    assert by_name["kidney_left"]["kinetics_model"] in ("mono", "bi")


@pytest.mark.parametrize(
    ("models", "fragment"),
    [
        ('spleen = "mono"', "kinetics.models.spleen: no region 'spleen'"),
        ('liver = "trapezoid_mon"', "kinetics.models.liver = 'trapezoid_mon' is not allowed"),
    ],
)
def test_a_wrong_region_model_is_refused_in_one_line(
    synthetic_study: SyntheticStudy, tmp_path: Path, models: str, fragment: str
) -> None:
    root = tmp_path / "study"
    shutil.copytree(synthetic_study.root, root)
    path = root / "study.toml"
    path.write_text(
        study_toml_text(root).replace('model = "auto"\n', f'model = "auto"\n\n[kinetics.models]\n{models}\n'),
        encoding="utf-8",
    )
    from theradose.pipeline.spec import load_study

    with pytest.raises(InputError) as info:
        load_study(path)
    assert fragment in str(info.value) and "\n" not in str(info.value)
