"""Registry: doses and outcomes per study and region, CTCAE/PSA from laboratory CSVs, de-identification."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from theradose.errors import InputError
from theradose.population.cohort import generate_cohort, run_synthetic_study, write_study_files
from theradose.population.registry import (
    build_registry,
    date_shift_days,
    deidentify,
    export_registry,
    pseudonym,
    read_registry,
)

SALT = "a-long-secret-salt-for-tests-0123456789"


@pytest.fixture(scope="module")
def batch_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Path]:
    """40 synthetic patients run with the synthetic runner (no Dask) into a batch-style folder."""
    root = tmp_path_factory.mktemp("registry")
    cohort = generate_cohort(40, seed=21)
    written = write_study_files(cohort, root / "studies", seed=22)
    out = root / "batch"
    for study in written.studies:
        run_synthetic_study(study, out / Path(study).parent.name)
    return cohort, written, out


def test_registry_rows_doses_and_outcomes(batch_folder: tuple[Any, Any, Path]) -> None:
    cohort, written, out = batch_folder
    frame = build_registry(out, outcomes_csv=written.outcomes_csv, labs_dir=written.labs_dir)
    assert len(frame) == 40 * 3  # one row per study and region
    assert set(frame["region"]) == {"kidneys", "salivary_glands", "tumour"}
    # doses are those of each study's doses.json
    sid = Path(written.studies[0]).parent.name
    doses = json.loads((out / sid / "doses.json").read_text())
    kidney = frame[(frame.study_id == sid) & (frame.region == "kidneys")].iloc[0]
    ref = next(r for r in doses["regions"] if r["name"] == "kidneys")
    assert doses["reference_dose"] == "local" and ref["dose"]["dose_gy"] == ref["doses"]["local"]["dose_gy"]
    assert kidney.dose_gy == ref["dose"]["dose_gy"] and kidney.bed_gy == ref["bed"]["bed_gy"]
    assert kidney.tissue == "kidney" and kidney.dose_source == "local" and kidney.activity_mbq == 7400.0
    for row, study in zip(cohort.itertuples(index=False), written.studies, strict=True):
        per_study = frame[frame.study_id == Path(study).parent.name]
        first = per_study.iloc[0]
        # response category: CR/PR for responders (outcomes CSV)
        assert (first.response_category in ("CR", "PR")) == bool(row.response)
        # creatinine 2.0 × baseline in cycle 2 → CTCAE v5.0 "Creatinine increased" grade 2
        # (> 1.5–3.0 × baseline); 1.05 × baseline with baseline within ULN → grade 0
        assert first.ctcae_creatinine_worst_grade == (2 if row.kidney_toxicity else 0)
        assert first.ctcae_xerostomia_worst_grade == row.xerostomia
        # PSA −60 % at week 6, −70 % at week 12 (≥ 3 weeks apart): PCWG3 confirmed response
        assert first.psa_response == ("response" if row.response else "stable")
        assert first.psa_best_change_percent == pytest.approx(-70.0 if row.response else -5.0, abs=0.2)
        assert first.survival_time_months == pytest.approx(row.survival_time_months, abs=1e-3)
        assert first.survival_event == row.survival_event
        assert first.age_years == pytest.approx(row.age_years, abs=0.051)


def _identifier_hits(path: Path, identifiers: list[str]) -> list[str]:
    """Every identifier found in the Parquet file's column names, values, or schema metadata."""
    table = pq.read_table(path)
    haystack: list[str] = list(table.column_names)
    for name in table.column_names:
        haystack.extend(str(v) for v in table.column(name).to_pylist())
    for key, value in (table.schema.metadata or {}).items():
        haystack.append(key.decode(errors="replace"))
        haystack.append(value.decode(errors="replace"))
    text = "\n".join(haystack).lower()
    return [ident for ident in identifiers if ident.lower() in text]


def test_deidentified_export_contains_no_identifier(
    batch_folder: tuple[Any, Any, Path], tmp_path: Path
) -> None:
    _, written, out = batch_folder
    identifiers = [*written.identifiers, *(Path(s).parent.name for s in written.studies)]
    identifiers += [str(s) for s in written.studies]
    plain = export_registry(
        out, tmp_path / "plain.parquet", outcomes_csv=written.outcomes_csv, labs_dir=written.labs_dir
    )
    # positive control: the scan finds the identifiers in a registry that is not de-identified
    assert len(_identifier_hits(plain.path, identifiers)) > 40
    deid = export_registry(
        out,
        tmp_path / "deid.parquet",
        deidentified=True,
        salt=SALT,
        outcomes_csv=written.outcomes_csv,
        labs_dir=written.labs_dir,
    )
    assert _identifier_hits(deid.path, identifiers) == []
    # each patient's real administration date appears nowhere in that patient's rows
    table = pq.read_table(deid.path).to_pylist()
    for pid, real_date in written.administration_dates.items():
        rows = [r for r in table if r["patient_id"] == pseudonym(pid, salt=SALT.encode())]
        assert len(rows) == 3
        assert not any(real_date in str(v) for r in rows for v in r.values())
    assert deid.patients == 40 and deid.rows == 120 and "patient_name" not in deid.columns
    frame = read_registry(deid.path)
    assert all(p.startswith("P") and len(p) == 17 for p in frame["patient_id"])
    # dates are shifted (never by 0 days) and the shift is the same for a patient's rows
    original = read_registry(plain.path)
    for (pid, d_orig), d_new in zip(
        original[["patient_id", "administration_date"]].itertuples(index=False),
        frame["administration_date"],
        strict=True,
    ):
        assert (d_new - d_orig).days == date_shift_days(pid, salt=SALT.encode())
        assert d_new != d_orig
    # the same salt gives the same pseudonyms (linkable across exports), another salt does not
    again = export_registry(out, tmp_path / "again.parquet", deidentified=True, salt=SALT)
    assert list(read_registry(again.path)["patient_id"]) == list(frame["patient_id"])
    other = export_registry(out, tmp_path / "other.parquet", deidentified=True, salt=SALT + "-other")
    assert set(read_registry(other.path)["patient_id"]).isdisjoint(frame["patient_id"])


def test_pseudonym_and_date_shift_properties() -> None:
    import hashlib
    import hmac

    key = SALT.encode()
    # HMAC-SHA-256 (RFC 2104) computed independently with the standard library
    expected = "P" + hmac.new(key, b"P\x00TDX123456", hashlib.sha256).hexdigest()[:16]
    assert pseudonym("TDX123456", salt=key) == expected
    shifts = [date_shift_days(f"TDX{i}", salt=key) for i in range(500)]
    assert all(-365 <= s <= 365 and s != 0 for s in shifts)
    assert len(set(shifts)) > 200  # spread, not a constant offset
    assert date_shift_days("TDX1", salt=key) == date_shift_days("TDX1", salt=key)


def test_age_cap_and_salt_rules() -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "study_id": ["s1", "s2"],
            "patient_id": ["a", "b"],
            "patient_name": ["Doe^Jane", "Roe^Rick"],
            "administration_date": [date(2025, 1, 6), date(2025, 2, 1)],
            "age_years": [93.4, 61.0],
        }
    )
    out = deidentify(frame, salt=SALT)
    assert list(out["age_years"]) == [90.0, 61.0]  # HIPAA Safe Harbor: ages over 89 aggregated
    assert "patient_name" not in out.columns
    with pytest.raises(InputError, match="salt"):
        deidentify(frame, salt="short")


def test_cli_registry_export_and_analyse(
    batch_folder: tuple[Any, Any, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from theradose.cli import main

    _, written, out = batch_folder
    parquet = tmp_path / "cohort.parquet"
    monkeypatch.setenv("THERADOSE_DEID_SALT", SALT)
    main(
        [
            "registry",
            "export",
            str(out),
            "--out",
            str(parquet),
            "--deidentify",
            "--outcomes",
            str(written.outcomes_csv),
            "--labs",
            str(written.labs_dir),
            "--json",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert data["deidentified"] is True and data["rows"] == 120 and data["studies"] == 40
    main(
        [
            "analyse",
            "dose-effect",
            str(parquet),
            "--endpoint",
            "response",
            "--plots",
            str(tmp_path / "plots"),
            "--json",
        ]
    )
    fit = json.loads(capsys.readouterr().out)
    assert fit["n"] == 40 and fit["dose"] == "tumour:dose_gy"
    assert fit["d50_ci_gy"][0] < fit["d50_gy"] < fit["d50_ci_gy"][1]
    assert fit["slope_per_gy"] > 0  # response rises with tumour dose in this cohort
    assert Path(fit["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<table" in Path(fit["table"]).read_text()
    main(["analyse", "survival", str(parquet), "--json"])
    surv = json.loads(capsys.readouterr().out)
    assert len(surv["groups"]) == 2 and sum(g["patients"] for g in surv["groups"]) == 40
    # kidney toxicity (creatinine CTCAE grade >= 2) against the kidney mean dose: mean-dose Lyman fit
    main(
        [
            "analyse",
            "ntcp",
            str(parquet),
            "--endpoint",
            "kidney_toxicity",
            "--dose",
            "kidney:dose_gy",
            "--json",
        ]
    )
    lkb = json.loads(capsys.readouterr().out)
    assert lkb["n"] == 1.0 and lkb["patients"] == 40 and 0 < lkb["events"] < 40
    assert lkb["td50_ci_gy"][0] < lkb["td50_gy"] < lkb["td50_ci_gy"][1]
    main(
        [
            "analyse",
            "predict",
            str(parquet),
            "--endpoint",
            "response",
            "--features",
            "tumour:dose_gy,age_years",
            "--json",
        ]
    )
    pred = json.loads(capsys.readouterr().out)
    assert pred["n_train"] + pred["n_test"] == 40 and pred["features"] == ["tumour:dose_gy", "age_years"]


@pytest.mark.parametrize(
    "args",
    [
        ["registry", "export", "MISSING", "--out", "X.parquet", "--json"],
        ["registry", "export", "EMPTY", "--out", "X.parquet", "--json"],
        ["analyse", "dose-effect", "MISSING.parquet", "--endpoint", "response", "--json"],
        ["analyse", "dose-effect", "NOTPARQUET", "--endpoint", "response", "--json"],
    ],
)
def test_cli_bad_input_exit_2(args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from theradose.cli import main

    (tmp_path / "empty").mkdir()
    (tmp_path / "not.parquet").write_text("a,b\n1,2\n")
    mapping = {
        "MISSING": str(tmp_path / "missing"),
        "EMPTY": str(tmp_path / "empty"),
        "X.parquet": str(tmp_path / "x.parquet"),
        "MISSING.parquet": str(tmp_path / "missing.parquet"),
        "NOTPARQUET": str(tmp_path / "not.parquet"),
    }
    with pytest.raises(SystemExit) as exc:
        main([mapping.get(a, a) for a in args])
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_cli_deidentify_without_salt_exit_2(
    batch_folder: tuple[Any, Any, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from theradose.cli import main

    monkeypatch.delenv("THERADOSE_DEID_SALT", raising=False)
    with pytest.raises(SystemExit) as exc:
        main(
            ["registry", "export", str(batch_folder[2]), "--out", str(tmp_path / "c.parquet"), "--deidentify"]
        )
    assert exc.value.code == 2 and "salt" in capsys.readouterr().err
    assert not (tmp_path / "c.parquet").exists()


def test_outcomes_csv_rejects_bad_values(tmp_path: Path) -> None:
    from theradose.population.registry import read_outcomes_csv

    bad = tmp_path / "outcomes.csv"
    bad.write_text("patient_id,response_category,survival_event\nA,PR,1\nB,partial,0\n")
    with pytest.raises(InputError, match="row 2: response_category='partial'"):
        read_outcomes_csv(bad)
    bad.write_text("patient_id,survival_event\nA,2\n")
    with pytest.raises(InputError, match="survival_event"):
        read_outcomes_csv(bad)
    bad.write_text("patient_id,toxicity_grade\nA,1\nA,2\n")
    with pytest.raises(InputError, match="repeated"):
        read_outcomes_csv(bad)


def test_endpoint_table_rules(batch_folder: tuple[Any, Any, Path]) -> None:
    from theradose.population.analysis import endpoint_table

    cohort, written, out = batch_folder
    frame = build_registry(out, outcomes_csv=written.outcomes_csv, labs_dir=written.labs_dir)
    by_patient = {
        Path(s).parent.name: row for s, row in zip(written.studies, cohort.itertuples(), strict=True)
    }
    kidney = endpoint_table(frame, "kidney_toxicity", threshold=2)
    for study_id, outcome in zip(kidney.study_id, kidney.outcome, strict=True):
        assert outcome == by_patient[study_id].kidney_toxicity
    # default dose of the kidney endpoint: the kidneys' BED, as in the registry rows
    sid = kidney.study_id[0]
    bed = frame[(frame.study_id == sid) & (frame.tissue == "kidney")].bed_gy.iloc[0]
    assert kidney.dose[0] == pytest.approx(bed)
    psa = endpoint_table(frame, "psa_response")
    assert psa.outcome.tolist() == [float(by_patient[s].response) for s in psa.study_id]
    with pytest.raises(InputError, match="unknown"):
        endpoint_table(frame, "nonsense")
    with pytest.raises(InputError, match="no region"):
        endpoint_table(frame, "response", dose="liver:dose_gy")


def test_endpoint_table_sums_a_patients_cycles(tmp_path: Path) -> None:
    """Two cycles of one patient: one row, dose = sum over the cycles (no pseudo-replicates)."""
    from theradose.population.analysis import endpoint_table

    cohort = generate_cohort(10, seed=5).head(3)
    written = write_study_files(cohort, tmp_path / "s", seed=6)
    out = tmp_path / "batch"
    for study in written.studies:
        run_synthetic_study(study, out / Path(study).parent.name)
    first = written.studies[0]
    second = first.parent / "cycle2.toml"
    second.write_text(first.read_text().replace("cycle = 1", "cycle = 2"))
    run_synthetic_study(second, out / (first.parent.name + "_c2"))
    frame = build_registry(out, outcomes_csv=written.outcomes_csv)
    assert sorted(frame[frame.region == "tumour"].cycle.tolist()) == [1, 1, 1, 2]
    per_patient = endpoint_table(frame, "response", dose="tumour:dose_gy")
    assert len(per_patient) == 3
    pid = first.parent.name
    row = per_patient[per_patient.patient_id == pid].iloc[0]
    cycles = frame[(frame.patient_id == pid) & (frame.region == "tumour")].dose_gy
    assert row.studies == 2 and row.dose == pytest.approx(float(cycles.sum()))
    assert row.dose == pytest.approx(2 * float(cycles.iloc[0]))  # same images, same dose per cycle
    assert len(endpoint_table(frame, "response", dose="tumour:dose_gy", per="study")) == 4


def test_synthetic_voxel_stage_agrees_with_local_deposition(tmp_path: Path) -> None:
    """Voxel S-value dose of uniformly filled spheres vs local deposition of all electron energy.

    For 177Lu the electrons are absorbed almost entirely in spheres of ≥ 20 g: absorbed fractions ≈ 0.97
    (20 g) to > 0.99 (300 g) (Stabin & Konijnenberg 2000, J Nucl Med 41:149, unit-density spheres), so
    the voxel dose lies a few per cent below the local dose, least for the largest sphere.
    """
    cohort = generate_cohort(10, seed=3).head(1)
    written = write_study_files(
        cohort, tmp_path / "s", seed=4, voxel={"grid": 48, "voxel_mm": 6.0, "engine": "vsv"}
    )
    run_synthetic_study(written.studies[0], tmp_path / "out")
    doses = json.loads((tmp_path / "out" / "doses.json").read_text())
    assert doses["engines"] == ["local", "vsv"]
    ratio = {
        r["name"]: r["doses"]["vsv"]["dose_gy"] / r["doses"]["local"]["dose_gy"] for r in doses["regions"]
    }
    assert 0.90 < ratio["tumour"] < 1.0
    assert 0.95 < ratio["kidneys"] <= 1.0
    assert ratio["kidneys"] > ratio["tumour"]
    bad = written.studies[0].read_text().replace("grid = 48", "grid = 16")
    written.studies[0].write_text(bad)
    with pytest.raises(InputError, match="do not fit"):
        run_synthetic_study(written.studies[0], tmp_path / "out2")
