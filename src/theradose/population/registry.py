"""The dose registry: per study and region the doses, kinetics, BED, protocol and outcomes, in Parquet.

:func:`build_registry` reads a batch output folder (``<dir>/<study_id>/doses.json``, as written by the
study pipeline or :func:`~theradose.population.cohort.run_synthetic_study`) into a long table, one row per
study and region, and joins the outcomes:

* an optional **outcomes CSV** (one row per patient): ``patient_id`` and any of ``response_category``
  (CR/PR/SD/PD), ``toxicity_grade``, ``psa_change_percent``, ``survival_time_months``, ``survival_event``
  (0/1), ``birth_date`` (turned into ``age_years`` at administration, then dropped), ``sex``;
* an optional **laboratory folder** with ``<patient_id>.csv`` per patient in the format of ``theradose
  safety grade`` plus a ``cycle`` column (0 or empty: baseline). Every value is graded by CTCAE v5.0
  (:func:`theradose.safety.grade_lab`); the worst grade per test in the study's cycle becomes
  ``ctcae_<test>_grade`` and the worst over all treatment cycles ``ctcae_<test>_worst_grade``
  (:func:`theradose.safety.worst_grades_by_cycle`). PSA values give ``psa_response`` by PCWG3 (Scher et
  al. 2016, J Clin Oncol 34:1402; :func:`theradose.safety.psa_response`), ``psa_baseline_ng_ml`` and
  ``psa_best_change_percent``.

:func:`deidentify` prepares a table for sharing: keyed pseudonyms (HMAC-SHA-256 with a secret salt, so the
same patient gets the same pseudonym in every export made with that salt and nobody without the salt can
recompute it), per-patient date shifting by a consistent keyed offset of up to ±365 days (intervals within
a patient are preserved), ages above 89 reported as 90 (HIPAA Safe Harbor, 45 CFR 164.514(b)(2)(i)(C)),
and no names, birth dates, original IDs, file paths or DICOM identifiers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from theradose.dosimetry.results import ORGAN_SOURCE, StudyDoses, read_doses
from theradose.errors import InputError

#: Columns that hold direct identifiers in a non-de-identified registry: :func:`deidentify` replaces the
#: IDs by pseudonyms and drops the others.
IDENTIFYING_COLUMNS = ("study_id", "patient_id", "patient_name", "study_file")
#: Columns kept from the outcomes CSV (others are ignored so nothing unexpected reaches the export).
OUTCOME_COLUMNS = (
    "response_category",
    "toxicity_grade",
    "psa_change_percent",
    "survival_time_months",
    "survival_event",
    "sex",
)
RESPONSE_CATEGORIES = ("CR", "PR", "SD", "PD")
_FLOAT_COLUMNS = frozenset(
    {
        "activity_mbq",
        "mass_g",
        "volume_ml",
        "tia_mbq_h",
        "tia_sigma_mbq_h",
        "effective_half_life_h",
        "dose_gy",
        "dose_sigma_gy",
        "dose_gy_per_gbq",
        "organ_dose_gy",
        "bed_gy",
        "psa_change_percent",
        "survival_time_months",
        "age_years",
        "psa_baseline_ng_ml",
        "psa_best_change_percent",
    }
)
#: Maximum absolute date shift (days) of :func:`deidentify`.
MAX_DATE_SHIFT_DAYS = 365
#: Ages above this are reported as ``AGE_CAP_YEARS`` (HIPAA Safe Harbor, 45 CFR 164.514(b)(2)(i)(C)).
AGE_CAP_YEARS = 90.0
#: Minimum length (bytes) of the de-identification salt.
MIN_SALT_BYTES = 16


@dataclass(frozen=True)
class RegistryExport:
    """What :func:`export_registry` wrote.

    Attributes
    ----------
    path : Path
    rows, studies, patients : int
    columns : tuple of str
    deidentified : bool
    """

    path: Path
    rows: int
    studies: int
    patients: int
    columns: tuple[str, ...]
    deidentified: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "rows": self.rows,
            "studies": self.studies,
            "patients": self.patients,
            "columns": list(self.columns),
            "deidentified": self.deidentified,
        }


# ------------------------------------------------------------------------------------------- reading
def read_batch_dir(batch_dir: str | Path) -> list[tuple[str, StudyDoses]]:
    """``(study_id, dose record)`` for every ``<batch_dir>/<study_id>/doses.json``, sorted by study id,
    read through :class:`~theradose.dosimetry.results.StudyDoses` (version 1 files upgraded)."""
    root = Path(batch_dir)
    if not root.is_dir():
        raise InputError(f"batch folder {root} does not exist: give the --out folder of 'theradose batch'")
    out: list[tuple[str, StudyDoses]] = []
    for doses_path in sorted(root.glob("*/doses.json")):
        sid = doses_path.parent.name
        if sid.startswith("."):
            continue
        out.append((sid, read_doses(doses_path)))
    if not out:
        raise InputError(f"no <study>/doses.json under {root}: run 'theradose batch ... --out {root}' first")
    return out


def _region_rows(sid: str, doses: StudyDoses) -> list[dict[str, Any]]:
    """One row per region: the study's reference dose (``dose_source`` names it) and the BED computed
    from it, as every other screen shows them (:meth:`StudyDoses.rows`), plus the organ-level dose."""
    adm = doses.administration
    rows: list[dict[str, Any]] = []
    for region in doses.regions:
        shown = doses.row(region)
        organ = region.dose(ORGAN_SOURCE)
        rows.append(
            {
                "study_id": sid,
                "patient_id": doses.patient.id,
                "patient_name": doses.patient.name,
                "cycle": doses.cycle,
                "administration_date": adm.datetime.date(),
                "nuclide": adm.nuclide,
                "radiopharmaceutical": adm.radiopharmaceutical,
                "activity_mbq": adm.activity_mbq,
                "region": region.name,
                "kind": region.kind.value,
                "tissue": region.tissue,
                "mass_g": region.mass_g,
                "volume_ml": region.volume_ml,
                "tia_mbq_h": region.tia_mbq_h,
                "tia_sigma_mbq_h": region.tia_sigma_mbq_h,
                "kinetics_model": region.kinetics_model,
                "effective_half_life_h": region.effective_half_life_h,
                "dose_source": shown.source,
                "dose_gy": shown.dose_gy,
                "dose_sigma_gy": shown.dose_sigma_gy,
                "dose_gy_per_gbq": shown.dose_gy_per_gbq,
                "organ_dose_gy": None if organ is None else organ.dose_gy,
                "bed_gy": shown.bed_gy,
            }
        )
    return rows


def read_outcomes_csv(path: str | Path) -> dict[str, dict[str, Any]]:
    """Outcomes per patient (see the module docstring for the columns)."""
    from theradose.tables import parse_float, read_rows

    def category(text: str) -> str:
        value = text.strip().upper()
        if value not in RESPONSE_CATEGORIES:
            raise ValueError(f"expected one of {', '.join(RESPONSE_CATEGORIES)}")
        return value

    def event(text: str) -> int:
        value = int(text)
        if value not in (0, 1):
            raise ValueError("expected 0 (censored) or 1 (event)")
        return value

    def grade(text: str) -> int:
        value = int(text)
        if not 0 <= value <= 5:
            raise ValueError("a CTCAE grade is 0 to 5")
        return value

    def birth(text: str) -> date:
        return date.fromisoformat(text[:10])

    rows = read_rows(
        path,
        required={"patient_id": str},
        optional={
            "response_category": category,
            "toxicity_grade": grade,
            "psa_change_percent": parse_float,
            "survival_time_months": parse_float,
            "survival_event": event,
            "birth_date": birth,
            "sex": str,
        },
    )
    out: dict[str, dict[str, Any]] = {}
    for number, row in enumerate(rows, start=1):
        pid = row["patient_id"]
        if pid in out:
            raise InputError(f"{Path(path).name} row {number}: patient_id repeated: give one row per patient")
        if row.get("survival_time_months") is not None and row["survival_time_months"] < 0:
            raise InputError(f"{Path(path).name} row {number}: survival_time_months must be >= 0")
        out[pid] = row
    return out


def labs_features(labs_csv: str | Path) -> dict[str, Any]:
    """CTCAE grades per cycle and PSA response of one patient's laboratory CSV.

    Returns
    -------
    dict
        ``grades_by_cycle`` ({cycle: {test: worst grade}}, cycle 0 = baseline), ``psa_response``,
        ``psa_baseline_ng_ml``, ``psa_best_change_percent`` (None without ≥ 2 PSA values).
    """
    from theradose.safety import grade_lab, psa_response, worst_grades_by_cycle
    from theradose.safety.records import read_labs_csv

    labs, cycles = read_labs_csv(labs_csv)
    graded = [(c or 0, grade_lab(lab)) for lab, c in zip(labs, cycles, strict=True)]
    graded = [(c, g) for c, g in graded if not g.rule.endswith("not graded")]
    features: dict[str, Any] = {
        "grades_by_cycle": worst_grades_by_cycle(graded),
        "psa_response": None,
        "psa_baseline_ng_ml": None,
        "psa_best_change_percent": None,
    }
    psa = sorted((lab.on, lab.value) for lab in labs if lab.test == "psa")
    if len(psa) >= 2:
        result = psa_response([d for d, _ in psa], [v for _, v in psa])
        features.update(
            psa_response=result.category,
            psa_baseline_ng_ml=result.baseline_ng_ml,
            psa_best_change_percent=result.best_change_percent,
        )
    return features


def build_registry(
    batch_dir: str | Path,
    *,
    outcomes_csv: str | Path | None = None,
    labs_dir: str | Path | None = None,
) -> Any:
    """The registry table (pandas DataFrame, one row per study and region) of a batch output folder.

    Parameters
    ----------
    batch_dir : path
        ``--out`` folder of ``theradose batch``.
    outcomes_csv : path, optional
        Outcomes per patient.
    labs_dir : path, optional
        Folder of ``<patient_id>.csv`` laboratory files.

    Returns
    -------
    pandas.DataFrame
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for sid, doses in read_batch_dir(batch_dir):
        rows.extend(_region_rows(sid, doses))
    frame = pd.DataFrame(rows)
    outcomes = read_outcomes_csv(outcomes_csv) if outcomes_csv is not None else {}
    labs_root = Path(labs_dir) if labs_dir is not None else None
    if labs_root is not None and not labs_root.is_dir():
        raise InputError(f"--labs {labs_root} is not a folder: give the folder of <patient_id>.csv files")
    tests: set[str] = set()
    per_patient: dict[str, dict[str, Any]] = {}
    for pid in sorted(set(frame["patient_id"])):
        features: dict[str, Any] = {}
        if labs_root is not None and (labs_root / f"{pid}.csv").is_file():
            features = labs_features(labs_root / f"{pid}.csv")
            for per_test in features["grades_by_cycle"].values():
                tests.update(per_test)
        per_patient[pid] = features
    extra: dict[str, list[Any]] = {c: [] for c in (*OUTCOME_COLUMNS, "age_years")}
    lab_columns: dict[str, list[Any]] = {}
    for name in sorted(tests):
        lab_columns[f"ctcae_{name}_grade"] = []
        lab_columns[f"ctcae_{name}_worst_grade"] = []
    for c in ("psa_response", "psa_baseline_ng_ml", "psa_best_change_percent"):
        lab_columns[c] = []
    for row in frame.itertuples(index=False):
        out = outcomes.get(row.patient_id, {})
        feats = per_patient.get(row.patient_id, {})
        grades = feats.get("grades_by_cycle", {})
        for name in sorted(tests):
            in_cycle = grades.get(row.cycle, {}).get(name)
            on_treatment = [g[name] for c, g in grades.items() if c >= 1 and name in g]
            lab_columns[f"ctcae_{name}_grade"].append(in_cycle)
            lab_columns[f"ctcae_{name}_worst_grade"].append(max(on_treatment) if on_treatment else None)
        for c in ("psa_response", "psa_baseline_ng_ml", "psa_best_change_percent"):
            lab_columns[c].append(feats.get(c))
        worst_any = [g for c, per in grades.items() if c >= 1 for g in per.values()]
        for c in OUTCOME_COLUMNS:
            value = out.get(c)
            if value is None and c == "toxicity_grade" and worst_any:
                value = max(worst_any)
            if value is None and c == "psa_change_percent":
                value = feats.get("psa_best_change_percent")
            extra[c].append(value)
        birth = out.get("birth_date")
        age = None
        if birth is not None and row.administration_date is not None:
            age = round((row.administration_date - birth).days / 365.25, 1)
        extra["age_years"].append(age)
    for name, values in {**extra, **lab_columns}.items():
        frame[name] = pd.Series(
            values, dtype="object" if name in {"sex", "response_category", "psa_response"} else None
        )
    for name in frame.columns:
        if name.startswith("ctcae_") or name in {"toxicity_grade", "survival_event"}:
            frame[name] = pd.array(frame[name], dtype="Int64")
        elif name in _FLOAT_COLUMNS:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return frame


# ---------------------------------------------------------------------------------- de-identification
def _keyed(salt: bytes, purpose: str, value: str) -> str:
    return hmac.new(salt, f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()


def pseudonym(value: str, *, salt: bytes, prefix: str = "P") -> str:
    """Keyed pseudonym ``prefix`` + 16 hex digits of HMAC-SHA-256(salt, value) (RFC 2104)."""
    return prefix + _keyed(salt, prefix, value)[:16]


def date_shift_days(patient_id: str, *, salt: bytes) -> int:
    """The patient's date offset in days, in ``[-MAX_DATE_SHIFT_DAYS, MAX_DATE_SHIFT_DAYS]``, never 0."""
    span = 2 * MAX_DATE_SHIFT_DAYS
    offset = int(_keyed(salt, "date", patient_id)[:12], 16) % span - MAX_DATE_SHIFT_DAYS
    return offset if offset < 0 else offset + 1


def check_salt(salt: bytes | str) -> bytes:
    """The salt as bytes; at least :data:`MIN_SALT_BYTES` long."""
    key = salt.encode() if isinstance(salt, str) else bytes(salt)
    if len(key.strip()) < MIN_SALT_BYTES:
        raise InputError(
            f"de-identification salt has {len(key.strip())} bytes; need >= {MIN_SALT_BYTES}: use a long "
            "random secret (e.g. 'openssl rand -hex 32') kept apart from the export"
        )
    return key.strip()


def deidentify(frame: Any, *, salt: bytes | str) -> Any:
    """A de-identified copy of a registry table.

    ``study_id``/``patient_id`` → keyed pseudonyms (``S…``/``P…``), ``patient_name`` and any ``study_file``
    dropped, ``administration_date`` shifted by :func:`date_shift_days`, ``age_years`` capped at 90.
    """
    key = check_salt(salt)
    out = frame.copy()
    patients = [str(p) for p in out["patient_id"]]
    shifts = {p: timedelta(days=date_shift_days(p, salt=key)) for p in set(patients)}
    if "administration_date" in out:
        out["administration_date"] = [
            (d + shifts[p]) if isinstance(d, date) else None
            for d, p in zip(out["administration_date"], patients, strict=True)
        ]
    if "age_years" in out:
        out["age_years"] = [
            None if a is None or (isinstance(a, float) and math.isnan(a)) else min(float(a), AGE_CAP_YEARS)
            for a in out["age_years"]
        ]
    out["study_id"] = [pseudonym(str(s), salt=key, prefix="S") for s in out["study_id"]]
    out["patient_id"] = [pseudonym(p, salt=key, prefix="P") for p in patients]
    drop = [c for c in IDENTIFYING_COLUMNS if c not in ("study_id", "patient_id") and c in out.columns]
    return out.drop(columns=drop)


def export_registry(
    batch_dir: str | Path,
    out_path: str | Path,
    *,
    deidentified: bool = False,
    salt: bytes | str | None = None,
    outcomes_csv: str | Path | None = None,
    labs_dir: str | Path | None = None,
) -> RegistryExport:
    """Build the registry of a batch folder and write it as Parquet (atomically: temporary file + rename).

    Parameters
    ----------
    batch_dir : path
    out_path : path
        ``.parquet`` file.
    deidentified : bool
        Apply :func:`deidentify` (``salt`` required).
    salt : bytes or str, optional
        Secret key of the pseudonyms and date shifts.
    outcomes_csv, labs_dir : path, optional
        See :func:`build_registry`.

    Returns
    -------
    RegistryExport
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if deidentified and salt is None:
        raise InputError(
            "--deidentify needs a secret salt: set THERADOSE_DEID_SALT or pass --salt-file with >= 16 bytes"
        )
    key = check_salt(salt) if deidentified and salt is not None else b""
    frame = build_registry(batch_dir, outcomes_csv=outcomes_csv, labs_dir=labs_dir)
    if deidentified:
        frame = deidentify(frame, salt=key)
    target = Path(out_path)
    if target.exists() and target.is_dir():
        raise InputError(f"--out {target} is a folder: give a file name such as cohort.parquet")
    target.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[b"theradose"] = json.dumps(
        {"format": "theradose-registry", "version": 1, "deidentified": deidentified}
    ).encode()
    table = table.replace_schema_metadata(metadata)
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        pq.write_table(table, temp)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return RegistryExport(
        target,
        len(frame),
        int(frame["study_id"].nunique()),
        int(frame["patient_id"].nunique()),
        tuple(str(c) for c in frame.columns),
        deidentified,
    )


def read_registry(path: str | Path) -> Any:
    """A registry Parquet file as a pandas DataFrame (InputError when missing or not Parquet)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = Path(path)
    if not file.is_file():
        raise InputError(f"registry {file} does not exist: run 'theradose registry export' first")
    try:
        return pq.read_table(file).to_pandas()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{file} is not a Parquet registry ({exc}): give a cohort.parquet file") from None
