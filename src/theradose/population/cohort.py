"""Synthetic cohorts with a known, seeded dose–response, for testing the population analytics.

Three modes:

* :func:`generate_cohort` — one row per patient in memory, with the truth doses, a kidney DVH and the
  outcomes drawn from chosen dose–response laws (logistic tumour response, Lyman–Kutcher–Burman kidney
  toxicity, exponential survival with a dose-dependent hazard). The analytics must recover the chosen
  parameters from these data.
* :func:`write_study_files` — the same cohort as files a clinic would have: per patient a study file
  (``format = "theradose-synthetic-study"``) with its time–activity table, a laboratory CSV per patient
  (creatinine, PSA, xerostomia per cycle) and an outcomes CSV. :func:`run_synthetic_study` turns one study
  file into ``doses.json``/``provenance.json`` shaped like the pipeline's outputs: it fits each region's
  time–activity curve (:func:`theradose.kinetics.fit_tac`), integrates it, deposits the electron energy
  locally (self-dose of a β emitter) and computes the BED (:func:`theradose.radiobiology.bed_gy`).
* :func:`write_virtual_patient_studies` — real imaging studies for the study pipeline: simulated
  177Lu-PSMA-617 SPECT/CT of virtual patients (:mod:`theradose.phantoms`, tiny grids for tests) with
  their study files, for batch runs of ``theradose run``.

Dose–response laws
------------------
Tumour response: ``P = 1 / (1 + exp(-k (D - D50)))`` (linear-logistic in dose; the normalised slope is
``γ50 = k·D50/4``; Bentzen & Tucker 1997, Int J Radiat Biol 71:531).
Kidney toxicity: LKB, ``NTCP = Φ((gEUD - TD50) / (m·TD50))`` with ``gEUD = (Σ v_i D_i^(1/n))^n``
(Lyman 1985, Radiat Res Suppl 8:S13; Kutcher & Burman 1989, Int J Radiat Oncol Biol Phys 16:1623;
Niemierko 1999, Med Phys 26:1100 for gEUD).
Survival: exponential with hazard ``h0·exp(β (D - D_ref))`` (a proportional-hazards model; Cox 1972,
J R Stat Soc B 34:187), uniform administrative censoring.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import tomllib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from theradose.errors import InputError

SYNTHETIC_FORMAT = "theradose-synthetic-study"
#: Imaging schedule of the synthetic studies (h after administration), a common 177Lu-PSMA schedule.
TIMEPOINTS_H = (4.0, 24.0, 96.0, 168.0)
#: Administered activity per cycle (MBq), the standard 177Lu-PSMA-617 cycle (VISION trial, Sartor et al.
#: 2021, N Engl J Med 385:1091).
ACTIVITY_MBQ = 7400.0
#: Region masses (g): kidneys and salivary glands of the ICRP 89 adult male (ICRP Publication 89, 2002,
#: Table 2.8: kidneys 310 g; parotids 50 g + submandibular 25 g); a 20 g tumour.
REGION_MASS_G = {"kidneys": 310.0, "salivary_glands": 75.0, "tumour": 20.0}
REGION_TISSUE = {"kidneys": "kidney", "salivary_glands": "salivary_glands", "tumour": "tumour"}
#: Kidney DVH: number of equal-volume sub-volumes and the log-normal spread of their doses around the mean
#: (cortex/medulla heterogeneity of 177Lu uptake).
KIDNEY_DVH_BINS = 10
KIDNEY_DVH_SIGMA_LOG = 0.3
_SURNAMES = ("Moreau", "Okafor", "Lindqvist", "Tanaka", "Silva", "Kowalski", "Haddad", "Novak", "Brennan")
_GIVEN = ("Anna", "Jonas", "Mei", "Carlos", "Ingrid", "Tomasz", "Amara", "Pieter", "Leila", "Hugo")


@dataclass(frozen=True)
class CohortTruth:
    """The dose–response laws a synthetic cohort is drawn from (the "right answer" of the analytics).

    Attributes
    ----------
    d50_gy, slope_per_gy
        Logistic tumour response: dose of 50 % response (Gy) and slope ``k`` (1/Gy).
    td50_gy, m, n
        LKB kidney toxicity: gEUD of 50 % complication (Gy), slope parameter, volume parameter.
    salivary_d50_gy, salivary_slope_per_gy
        Logistic xerostomia (grade ≥ 1) against the mean salivary-gland dose.
    baseline_hazard_per_month, log_hazard_ratio_per_gy, reference_dose_gy
        Exponential survival with hazard ``h0·exp(β (D_tumour - D_ref))``.
    tumour_dose_median_gy, tumour_dose_sigma_log, kidney_dose_median_gy, kidney_dose_sigma_log,
    salivary_dose_median_gy, salivary_dose_sigma_log
        Log-normal population distributions of the mean doses.
    follow_up_months
        Administrative censoring: follow-up uniform on ``[follow_up_months/2, follow_up_months]``.
    """

    d50_gy: float = 30.0
    slope_per_gy: float = 0.15
    td50_gy: float = 28.0
    m: float = 0.15
    n: float = 0.7
    salivary_d50_gy: float = 25.0
    salivary_slope_per_gy: float = 0.2
    baseline_hazard_per_month: float = 1.0 / 18.0
    log_hazard_ratio_per_gy: float = -0.03
    reference_dose_gy: float = 30.0
    tumour_dose_median_gy: float = 30.0
    tumour_dose_sigma_log: float = 0.5
    kidney_dose_median_gy: float = 24.0
    kidney_dose_sigma_log: float = 0.35
    salivary_dose_median_gy: float = 22.0
    salivary_dose_sigma_log: float = 0.4
    follow_up_months: float = 48.0

    @property
    def gamma50(self) -> float:
        """Normalised slope ``γ50 = k·D50/4`` (Bentzen & Tucker 1997)."""
        return self.slope_per_gy * self.d50_gy / 4.0


def _logistic(dose_gy: np.ndarray, d50_gy: float, slope_per_gy: float) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-slope_per_gy * (dose_gy - d50_gy))), dtype=np.float64)


def generate_cohort(n_patients: int, *, seed: int, truth: CohortTruth | None = None) -> Any:
    """Draw a synthetic cohort (one row per patient) from the laws of ``truth``.

    Parameters
    ----------
    n_patients : int
        Number of patients (≥ 10).
    seed : int
        Seed of every random draw (same seed, same cohort).
    truth : CohortTruth, optional
        The dose–response laws (defaults of :class:`CohortTruth`).

    Returns
    -------
    pandas.DataFrame
        Columns ``patient_id``, ``tumour_dose_gy``, ``kidney_dose_gy`` (mean), ``kidney_dvh_dose_gy`` and
        ``kidney_dvh_volume_fraction`` (lists of length :data:`KIDNEY_DVH_BINS`), ``kidney_geud_gy``,
        ``salivary_dose_gy``, ``response_probability``, ``response`` (0/1), ``ntcp``,
        ``kidney_toxicity`` (0/1), ``xerostomia`` (0/1), ``survival_time_months``, ``survival_event``
        (0/1), ``age_years``.
    """
    import pandas as pd

    if n_patients < 10:
        raise InputError(f"n_patients must be >= 10 for a cohort; got {n_patients}")
    t = truth or CohortTruth()
    rng = np.random.default_rng(seed)
    tumour = t.tumour_dose_median_gy * np.exp(t.tumour_dose_sigma_log * rng.standard_normal(n_patients))
    kidney = t.kidney_dose_median_gy * np.exp(t.kidney_dose_sigma_log * rng.standard_normal(n_patients))
    salivary = t.salivary_dose_median_gy * np.exp(t.salivary_dose_sigma_log * rng.standard_normal(n_patients))
    fractions = np.full(KIDNEY_DVH_BINS, 1.0 / KIDNEY_DVH_BINS)
    dvh_doses: list[list[float]] = []
    geud = np.empty(n_patients)
    for i in range(n_patients):
        spread = np.exp(KIDNEY_DVH_SIGMA_LOG * rng.standard_normal(KIDNEY_DVH_BINS))
        doses = kidney[i] * spread / float(np.mean(spread))  # sub-volume doses with the drawn mean
        dvh_doses.append([float(d) for d in doses])
        geud[i] = float(np.sum(fractions * doses ** (1.0 / t.n)) ** t.n)
    p_response = _logistic(tumour, t.d50_gy, t.slope_per_gy)
    response = (rng.random(n_patients) < p_response).astype(int)
    from scipy.stats import norm

    ntcp = norm.cdf((geud - t.td50_gy) / (t.m * t.td50_gy))
    toxicity = (rng.random(n_patients) < ntcp).astype(int)
    p_xero = _logistic(salivary, t.salivary_d50_gy, t.salivary_slope_per_gy)
    xerostomia = (rng.random(n_patients) < p_xero).astype(int)
    hazard = t.baseline_hazard_per_month * np.exp(t.log_hazard_ratio_per_gy * (tumour - t.reference_dose_gy))
    event_time = rng.exponential(1.0 / hazard)
    censor_time = rng.uniform(t.follow_up_months / 2.0, t.follow_up_months, n_patients)
    observed = np.minimum(event_time, censor_time)
    event = (event_time <= censor_time).astype(int)
    age = np.round(rng.uniform(55.0, 85.0, n_patients), 1)
    return pd.DataFrame(
        {
            "patient_id": [f"SYN{i + 1:05d}" for i in range(n_patients)],
            "tumour_dose_gy": tumour,
            "kidney_dose_gy": kidney,
            "kidney_dvh_dose_gy": dvh_doses,
            "kidney_dvh_volume_fraction": [[float(f) for f in fractions] for _ in range(n_patients)],
            "kidney_geud_gy": geud,
            "salivary_dose_gy": salivary,
            "response_probability": p_response,
            "response": response,
            "ntcp": ntcp,
            "kidney_toxicity": toxicity,
            "xerostomia": xerostomia,
            "survival_time_months": observed,
            "survival_event": event,
            "age_years": age,
        }
    )


# ---------------------------------------------------------------------------------------- study files
@dataclass(frozen=True)
class WrittenCohort:
    """Files written by :func:`write_study_files`.

    Attributes
    ----------
    studies : tuple of Path
        One study file per patient (``<folder>/<patient_id>/study.toml``).
    outcomes_csv : Path
        ``patient_id,response_category,survival_time_months,survival_event,birth_date,sex``.
    labs_dir : Path
        ``<patient_id>.csv`` per patient in the format of ``theradose safety grade`` (with ``cycle``).
    identifiers : tuple of str
        Every direct identifier written into the inputs (IDs, names and their parts, birth dates): what a
        de-identified export must not contain anywhere.
    administration_dates : dict
        Patient ID → real administration date (ISO): a de-identified export must not show a patient's
        real date in that patient's rows (another patient's shifted date may coincide with it).
    """

    studies: tuple[Path, ...]
    outcomes_csv: Path
    labs_dir: Path
    identifiers: tuple[str, ...]
    administration_dates: Mapping[str, str]


def _tia_for_dose_mbq_h(dose_gy: float, mass_g: float, electron_mev_per_decay: float) -> float:
    from theradose.units import decays_from_tia_mbq_h, dose_gy_from_energy_mev_and_mass_g

    gy_per_mbq_h = float(
        dose_gy_from_energy_mev_and_mass_g(decays_from_tia_mbq_h(1.0) * electron_mev_per_decay, mass_g)
    )
    return dose_gy / gy_per_mbq_h


def write_study_files(
    cohort: Any,
    folder: str | Path,
    *,
    seed: int,
    effective_half_life_h: Sequence[float] = (40.0, 35.0, 60.0),
    noise_fraction: float = 0.05,
    voxel: Mapping[str, Any] | None = None,
) -> WrittenCohort:
    """Write a cohort from :func:`generate_cohort` as study files, laboratory CSVs and an outcomes CSV.

    Each patient gets ``<folder>/<patient_id>/study.toml`` and its ``tac.csv`` (activity of kidneys,
    salivary glands and tumour at :data:`TIMEPOINTS_H`, mono-exponential with the given effective
    half-lives — kidneys, salivary glands, tumour — whose integral gives the cohort's mean dose by local
    electron-energy deposition, plus Gaussian noise of ``noise_fraction``), with a synthetic name, birth
    date and administration date (identifiers for the de-identification tests).

    Returns
    -------
    WrittenCohort
    """
    from theradose.nuclides import get_nuclide

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    labs_dir = root / "labs"
    labs_dir.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    nuclide = get_nuclide("Lu-177")
    electron_mev = nuclide.electron_energy_mev_per_decay
    half_lives = dict(zip(("kidneys", "salivary_glands", "tumour"), effective_half_life_h, strict=True))
    studies: list[Path] = []
    identifiers: list[str] = []
    administration_dates: dict[str, str] = {}
    outcome_rows: list[dict[str, Any]] = []
    for row in cohort.itertuples(index=False):
        pid = f"TDX{int(rng.integers(100000, 999999))}"
        surname = _SURNAMES[int(rng.integers(len(_SURNAMES)))] + f"{int(rng.integers(10, 99))}"
        given = _GIVEN[int(rng.integers(len(_GIVEN)))]
        name = f"{surname}^{given}"
        administered = datetime(2025, 1, 6, 9, 0, tzinfo=UTC) + timedelta(days=int(rng.integers(0, 700)))
        birth = administered.date() - timedelta(days=round(float(row.age_years) * 365.25))
        identifiers += [pid, name, surname, birth.isoformat()]
        administration_dates[pid] = administered.date().isoformat()
        study_dir = root / pid
        study_dir.mkdir(exist_ok=True)
        doses = {
            "kidneys": row.kidney_dose_gy,
            "salivary_glands": row.salivary_dose_gy,
            "tumour": row.tumour_dose_gy,
        }
        tac = io.StringIO()
        writer = csv.writer(tac, lineterminator="\n")
        writer.writerow(["region", "time_h", "activity_mbq"])
        for region, dose in doses.items():
            tia = _tia_for_dose_mbq_h(float(dose), REGION_MASS_G[region], electron_mev)
            lam = math.log(2.0) / half_lives[region]
            for t_h in TIMEPOINTS_H:
                activity = tia * lam * math.exp(-lam * t_h) * (1.0 + noise_fraction * rng.standard_normal())
                writer.writerow([region, f"{t_h:g}", f"{max(activity, 1e-6):.6g}"])
        (study_dir / "tac.csv").write_text(tac.getvalue(), encoding="utf-8")
        regions = "".join(
            f'\n[[regions]]\nname = "{r}"\nmass_g = {REGION_MASS_G[r]}\ntissue = "{REGION_TISSUE[r]}"\n'
            f'kind = "{"tumour" if r == "tumour" else "organ"}"\n'
            for r in doses
        )
        study = (
            f'format = "{SYNTHETIC_FORMAT}"\nversion = 1\ncycle = 1\ntac = "tac.csv"\n\n'
            f'[patient]\nid = "{pid}"\nname = "{name}"\nbirth_date = {birth.isoformat()}\n\n'
            f'[administration]\nnuclide = "Lu-177"\nradiopharmaceutical = "177Lu-PSMA-617"\n'
            f"activity_mbq = {ACTIVITY_MBQ}\ndatetime = {administered.isoformat()}\n{regions}"
        )
        if voxel:
            study += "\n[voxel]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in voxel.items())
        (study_dir / "study.toml").write_text(study, encoding="utf-8")
        studies.append(study_dir / "study.toml")
        category = (
            ("CR" if rng.random() < 0.3 else "PR") if row.response else ("SD" if rng.random() < 0.5 else "PD")
        )
        outcome_rows.append(
            {
                "patient_id": pid,
                "response_category": category,
                "survival_time_months": f"{row.survival_time_months:.3f}",
                "survival_event": int(row.survival_event),
                "birth_date": birth.isoformat(),
                "sex": "M",
            }
        )
        _write_labs(labs_dir / f"{pid}.csv", administered.date(), row, rng)
    outcomes = root / "outcomes.csv"
    with outcomes.open("w", encoding="utf-8", newline="") as fh:
        table = csv.DictWriter(fh, fieldnames=list(outcome_rows[0]), lineterminator="\n")
        table.writeheader()
        table.writerows(outcome_rows)
    return WrittenCohort(tuple(studies), outcomes, labs_dir, tuple(identifiers), administration_dates)


def _write_labs(path: Path, start: date, row: Any, rng: np.random.Generator) -> None:
    """Creatinine, PSA and xerostomia per cycle: creatinine 2× baseline in cycle 2 for a kidney toxicity
    (CTCAE v5.0 "Creatinine increased" grade 2: > 1.5–3.0 × baseline), PSA −60 %/−70 % at weeks 6/12 for a
    responder (PCWG3 confirmed ≥ 50 % decline), xerostomia grade 1 in cycle 1 when drawn."""
    base_creatinine = round(float(rng.uniform(0.7, 1.0)), 2)
    base_psa = round(float(rng.uniform(20.0, 200.0)), 1)
    rows = [
        (start - timedelta(days=7), "creatinine", base_creatinine, "mg/dL", base_creatinine, 0),
        (start - timedelta(days=7), "psa", base_psa, "ng/mL", "", 0),
        (
            start + timedelta(days=42),
            "creatinine",
            round(base_creatinine * 1.05, 2),
            "mg/dL",
            base_creatinine,
            1,
        ),
        (
            start + timedelta(days=42),
            "psa",
            round(base_psa * (0.4 if row.response else 0.95), 2),
            "ng/mL",
            "",
            1,
        ),
        (start + timedelta(days=42), "xerostomia", int(row.xerostomia), "", "", 1),
        (
            start + timedelta(days=84),
            "creatinine",
            round(base_creatinine * (2.0 if row.kidney_toxicity else 1.05), 2),
            "mg/dL",
            base_creatinine,
            2,
        ),
        (
            start + timedelta(days=84),
            "psa",
            round(base_psa * (0.3 if row.response else 0.97), 2),
            "ng/mL",
            "",
            2,
        ),
    ]
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["date", "test", "value", "unit", "baseline", "cycle"])
        for r in rows:
            writer.writerow([r[0].isoformat(), *r[1:]])


# ---------------------------------------------------------------------------------- synthetic runner
def is_synthetic_study(path: str | Path) -> bool:
    """True when ``path`` is a study file written by :func:`write_study_files`."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return data.get("format") == SYNTHETIC_FORMAT


def _load_synthetic(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read study file {path} ({exc.strerror}): check the path") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"study file {path} is not valid TOML ({exc}): fix the syntax") from None
    if data.get("format") != SYNTHETIC_FORMAT:
        raise InputError(
            f"study file {path}: format must be {SYNTHETIC_FORMAT!r}; got {data.get('format')!r}"
        )
    for key in ("patient", "administration", "regions", "tac"):
        if key not in data:
            raise InputError(f"study file {path}: missing key {key!r}: add it")
    return data


def run_synthetic_study(study_path: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Run one synthetic study: fit each region's TAC, integrate, dose by local deposition, BED.

    Writes ``doses.json`` (the dose record, :class:`~theradose.dosimetry.results.StudyDoses`, reference
    dose ``local``, plus the estimates of the engine of an optional ``[voxel]`` table) and
    ``provenance.json`` into ``out_dir`` atomically (a temporary sibling folder renamed on success).

    Dose: ``D = Ã · N_A · Ē_e / m`` (MIRD local-deposition self-dose of the electrons; Bolch et al. 2009,
    MIRD Pamphlet 21, J Nucl Med 50:477). BED: :func:`theradose.radiobiology.bed_gy`.

    Returns
    -------
    dict
        ``{"doses": "doses.json", "regions": N}``.
    """
    from theradose.dosimetry.engines.registry import DoseEngine
    from theradose.dosimetry.results import (
        Administration,
        EngineDose,
        Patient,
        RegionKind,
        RegionResult,
        StudyDoses,
        round_sig,
    )
    from theradose.kinetics import fit_tac
    from theradose.nuclides import get_nuclide
    from theradose.organs import find_organ
    from theradose.tables import parse_float, read_rows
    from theradose.tissues import get_tissue
    from theradose.units import decays_from_tia_mbq_h, dose_gy_from_energy_mev_and_mass_g

    path = Path(study_path).resolve()
    data = _load_synthetic(path)
    nuclide = get_nuclide(str(data["administration"]["nuclide"]))
    activity_mbq = float(data["administration"]["activity_mbq"])
    rows = read_rows(
        path.parent / str(data["tac"]),
        required={"region": str, "time_h": parse_float, "activity_mbq": parse_float},
    )
    regions_in: list[dict[str, Any]] = []
    local: dict[str, EngineDose] = {}
    for region in data["regions"]:
        name = str(region["name"])
        points = sorted((r["time_h"], r["activity_mbq"]) for r in rows if r["region"] == name)
        if len(points) < 2:
            raise InputError(f"study file {path}: region {name!r} has {len(points)} TAC points; need >= 2")
        fit = fit_tac(
            [p[0] for p in points],
            [p[1] for p in points],
            model="mono",
            decay_constant_per_h=nuclide.decay_constant_per_h,
        )
        mass_g = float(region["mass_g"])
        dose = float(
            dose_gy_from_energy_mev_and_mass_g(
                decays_from_tia_mbq_h(fit.tia_mbq_h) * nuclide.electron_energy_mev_per_decay, mass_g
            )
        )
        rel = (fit.tia_sigma_mbq_h or 0.0) / fit.tia_mbq_h if fit.tia_mbq_h > 0 else 0.0
        local[name] = EngineDose(
            DoseEngine.LOCAL.value,
            round_sig(dose),
            round_sig(dose * rel),
            "local deposition of the electron energy in the region's mass (MIRD Pamphlet 21 self-dose)",
        )
        regions_in.append({**region, "fit": fit, "tia_mbq_h": fit.tia_mbq_h})
    engines = [DoseEngine.LOCAL.value]
    voxel: dict[str, EngineDose] = {}
    if "voxel" in data:
        engine, voxel = _voxel_doses(data["voxel"], regions_in, nuclide, path)
        if engine != DoseEngine.LOCAL:
            engines.append(engine.value)
    reference = engines[0]
    regions_out = []
    for region in regions_in:
        name, fit = str(region["name"]), region["fit"]
        estimates = [local[name]] + ([voxel[name]] if name in voxel and engines[-1] != reference else [])
        tissue = str(region.get("tissue", "")) or None
        half_life = round_sig(fit.effective_half_life_h)
        regions_out.append(
            RegionResult(
                name=name,
                kind=RegionKind(str(region.get("kind", "organ"))),
                doses=tuple(estimates),
                mass_g=round_sig(float(region["mass_g"])),
                tia_mbq_h=round_sig(fit.tia_mbq_h),
                tia_sigma_mbq_h=round_sig(fit.tia_sigma_mbq_h),
                kinetics_model=fit.model,
                effective_half_life_h=half_life,
                organ=None if (organ := find_organ(name)) is None else organ.name,
                tissue=None if tissue is None else get_tissue(tissue).name,
                bed=_bed(local[name], tissue, half_life),
            )
        )
    adm = data["administration"]
    when = adm["datetime"]
    record = StudyDoses(
        patient=Patient(str(data["patient"]["id"]), str(data["patient"].get("name", ""))),
        cycle=int(data.get("cycle", 1)),
        administration=Administration(
            nuclide=nuclide.name,
            radiopharmaceutical=str(adm.get("radiopharmaceutical", nuclide.name)),
            activity_mbq=activity_mbq,
            datetime=when if isinstance(when, datetime) else datetime.fromisoformat(str(when)),
        ),
        reference_dose=reference,
        engines=tuple(engines),
        regions=tuple(regions_out),
    )
    provenance = {
        "format": "theradose-provenance",
        "version": 1,
        "study_file": str(path),
        "method": "synthetic TAC: mono-exponential fit, local electron deposition, BED",
    }
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    temp.mkdir()
    try:
        (temp / "doses.json").write_text(record.to_json(), encoding="utf-8")
        (temp / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(out, old)
            os.replace(temp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temp, out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return {"doses": "doses.json", "regions": len(regions_out)}


def _bed(dose: Any, tissue: str | None, effective_half_life_h: float | None) -> Any:
    """BED of a synthetic region's dose (:class:`~theradose.dosimetry.results.Bed`, or None without a tissue
    with LQ parameters or a half-life): :func:`theradose.radiobiology.bed_gy`."""
    from theradose.dosimetry.results import Bed, round_sig
    from theradose.radiobiology import bed_gy
    from theradose.tissues import get_tissue

    if tissue is None or effective_half_life_h is None or dose.dose_gy is None:
        return None
    params = get_tissue(tissue)
    if params.alpha_beta_gy is None or params.repair_half_time_h is None:
        return None
    value = bed_gy(
        dose.dose_gy,
        effective_half_life_h=effective_half_life_h,
        alpha_beta_gy=params.alpha_beta_gy,
        repair_half_time_h=params.repair_half_time_h,
    )
    return Bed(
        round_sig(value) or 0.0,
        dose.dose_gy,
        dose.source,
        params.name,
        params.alpha_beta_gy,
        params.repair_half_time_h,
        effective_half_life_h,
        params.radiobiology_source,
    )


def _voxel_doses(
    table: Any, regions: list[dict[str, Any]], nuclide: Any, path: Path
) -> tuple[Any, dict[str, Any]]:
    """Optional voxel stage of a synthetic study: each region as a sphere of its mass on a ``grid``³ grid
    of ``voxel_mm`` voxels (centres along the last axis, 3 voxels apart), filled uniformly with its TIA;
    the dose map of ``engine`` (:func:`theradose.dosimetry.engines.dose_rate_or_dose`) gives each region's
    mean dose (:func:`~theradose.dosimetry.dvh.mean_dose_gy`, uniform density) and DVH. Returns the engine
    and its estimate per region."""
    from theradose.dosimetry.dvh import dose_volume_histogram, mean_dose_gy
    from theradose.dosimetry.engines import DoseEngine, dose_rate_or_dose, parse_engine
    from theradose.dosimetry.results import Dvh, EngineDose, round_sig
    from theradose.imaging.volume import Volume
    from theradose.tissues import density_g_per_ml

    soft_g_per_ml = density_g_per_ml("soft_tissue")  # a region's mass → its sphere volume
    grid = int(table.get("grid", 48))
    voxel_mm = float(table.get("voxel_mm", 6.0))
    engine = parse_engine(
        str(table.get("engine", DoseEngine.VSV.value)), field=f"study file {path}: [voxel] engine"
    )
    if not 16 <= grid <= 256 or voxel_mm <= 0:
        raise InputError(
            f"study file {path}: [voxel] needs 16 <= grid <= 256 and voxel_mm > 0; "
            f"got grid={grid}, voxel_mm={voxel_mm}"
        )
    voxel_ml = (voxel_mm / 10.0) ** 3
    radii = [
        (3.0 * float(r["mass_g"]) / soft_g_per_ml / voxel_ml / (4.0 * math.pi)) ** (1.0 / 3.0)
        for r in regions
    ]
    centres: list[float] = []
    position = 2.0
    for radius in radii:
        centres.append(position + radius)
        position += 2.0 * radius + 3.0
    if position - 1.0 > grid or 2.0 * max(radii) + 4.0 > grid:
        raise InputError(
            f"study file {path}: the regions do not fit a {grid}³ grid of {voxel_mm} mm voxels: raise "
            "[voxel] grid or voxel_mm"
        )
    tia = np.zeros((grid, grid, grid))
    k, j, i = np.indices(tia.shape, dtype=np.float64)
    mid = (grid - 1) / 2.0
    masks = []
    for region, centre, radius in zip(regions, centres, radii, strict=True):
        mask = (k - mid) ** 2 + (j - mid) ** 2 + (i - centre) ** 2 <= radius**2
        tia[mask] += float(region["tia_mbq_h"]) / max(int(mask.sum()), 1)
        masks.append(mask)
    volume = Volume.from_spacing(tia, spacing_mm=(voxel_mm,) * 3, origin_mm=(0.0, 0.0, 0.0), unit="MBq·h")
    dose = dose_rate_or_dose(
        volume,
        None,
        nuclide,
        engine=engine,
        workers=1,
        n_photons=int(table.get("mc_photons", 200_000)),
        seed=int(table.get("seed", 0)),
    )
    values = np.asarray(dose.array, dtype=np.float64)
    out: dict[str, EngineDose] = {}
    for region, mask in zip(regions, masks, strict=True):
        dvh = dose_volume_histogram(values, mask=mask)
        out[str(region["name"])] = EngineDose(
            engine.value,
            round_sig(mean_dose_gy(values, mask)),
            None,
            f"{engine} engine on a sphere of the region's mass, mean of the voxel doses (uniform density)",
            Dvh(
                tuple(round_sig(x) or 0.0 for x in dvh.dose_gy),
                tuple(round_sig(x) or 0.0 for x in dvh.cumulative_fraction),
            ),
        )
    return engine, out


# ------------------------------------------------------------------------------- virtual patients
def write_virtual_patient_studies(
    n_patients: int, folder: str | Path, *, seed: int, grid: int = 32
) -> tuple[Path, ...]:
    """Study files of simulated 177Lu-PSMA-617 patients for the study pipeline (real imaging studies).

    Each patient is a virtual patient of :mod:`theradose.phantoms` with its own anatomy, kinetics,
    tumours and noise (seed ``seed + i``), imaged by SPECT/CT at 4, 24, 96 and 168 h on a ``grid``² × N
    matrix and written as DICOM CT + quantitative NM with the truth alongside
    (:func:`theradose.pipeline.demo.create_patient`); its study file
    (:func:`theradose.pipeline.demo.write_study_file`) uses the truth label map as segmentation.

    Parameters
    ----------
    n_patients : int
    folder : path
        Receives ``patient_<seed>/`` (DICOM + truth) and ``patient_<seed>.toml`` per patient.
    seed : int
        Seed of the first patient.
    grid : int
        Transaxial matrix (32 for CI-size patients, 128 for the clinical size).

    Returns
    -------
    tuple of Path
        The study files.
    """
    from theradose.pipeline.demo import create_patient, write_study_file

    if n_patients < 1:
        raise InputError(f"n_patients must be >= 1; got {n_patients}")
    root = Path(folder)
    studies = []
    for i in range(n_patients):
        s = seed + i
        patient = create_patient(root / f"patient_{s}", seed=s, grid=grid)
        studies.append(write_study_file(patient, root / f"patient_{s}.toml", recovery_curve=None))
    return tuple(studies)
