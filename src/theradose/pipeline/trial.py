"""The virtual multicentre trial as a benchmark: every patient at every site through the pipeline, each
dosimetry method, errors against the truth and the harmonisation table.

The trial's images and truth come from :mod:`theradose.phantoms.trial` (another anatomy and kinetics
generator than the demo's); each site's effective resolution and recovery curves are measured here from
the site's own IEC acquisitions, as a clinic would with ``theradose qa resolution`` / ``qa recovery``.

Methods (:data:`TRIAL_METHODS`):

``none``         no partial-volume correction;
``legacy``       enlarged organ VOIs (margin = 1 FWHM at the orbit radius) and recovery curves for lesions;
``gtm``          geometric transfer matrix over all regions and tissue classes, responses fitted to the
                 objects' spill-out (the default of ``[pvc] method = "gtm"``);
``gtm_phantom``  the same with the phantom-measured responses only (no fit to the image);
``gtm_rc``       GTM for organs, recovery curves (size and contrast) for lesions;
``rbv``          region-based voxel-wise correction.

Red marrow is scored for the image-based (L2-L4) and the blood-based method (from the ``gtm`` run).
Doses are scored for the ``local`` engine (local deposition, like the truth).
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from theradose.errors import InputError

#: Methods the trial can run (module docstring), in table order.
TRIAL_METHODS: tuple[str, ...] = ("none", "legacy", "gtm", "gtm_phantom", "gtm_rc", "rbv")
#: Methods run by default.
DEFAULT_METHODS: tuple[str, ...] = ("none", "legacy", "gtm", "gtm_rc", "rbv")
#: Organ regions scored against the issue's goals (name → goal on |error| in percent: median, max).
ORGAN_GOALS: dict[str, tuple[float, float]] = {
    "kidneys": (3.0, 5.0),
    "liver": (3.0, 5.0),
    "spleen": (3.0, 5.0),
    "salivary_glands": (10.0, 10.0),
}
#: Lesions of at least this diameter are scored against 10 %.
SCORED_LESION_MM = 20.0
LESION_GOAL_PERCENT = 10.0
MARROW_IMAGE_GOAL_PERCENT = 15.0
#: Vertebrae of the image-based marrow VOI.
MARROW_VERTEBRAE = ("L2", "L3", "L4")


@dataclass(frozen=True)
class TrialBenchmark:
    """Outcome of :func:`run_trial_benchmark`."""

    rows: tuple[dict[str, Any], ...]
    table: tuple[dict[str, Any], ...]
    files: tuple[Path, ...]
    elapsed_s: float
    methods: tuple[str, ...]
    sites: tuple[str, ...]


# ------------------------------------------------------------------------------------------ site QA
def site_qa(trial_dir: Path, site: str) -> tuple[Path, Path]:
    """The site's effective resolution and recovery curves from its IEC fills (written once)."""
    from theradose.io.dicom import discover_series, read_series
    from theradose.qa.resolution import IecFill, measure_fill, resolution_from_iec
    from theradose.qa.spect import fit_recovery_curve, sphere_volume_ml

    folder = trial_dir / "sites" / site
    res_path = folder / "qa" / "resolution.json"
    rc_path = folder / "qa" / "recovery_curve.json"
    if res_path.is_file() and rc_path.is_file():
        return res_path, rc_path
    calibration = json.loads((folder / "calibration.json").read_text(encoding="utf-8"))
    fills: list[Any] = []
    for ratio in calibration["iec_contrasts"]:
        iec = folder / f"iec_{ratio:g}"
        truth = json.loads((iec / "truth" / "truth.json").read_text(encoding="utf-8"))
        series = [s for s in discover_series(iec / "spect") if s.modality == "NM"]
        image = read_series(iec / "spect", series_uid=series[0].series_uid)
        fills.append(
            IecFill(
                image,
                float(truth["sphere_concentration_bq_per_ml"]),
                float(truth["background_concentration_bq_per_ml"]),
                [s["centre_mm"] for s in truth["spheres"]],
            )
        )
    resolution = resolution_from_iec(fills, source=f"site {site} IEC phantom fills")
    curves = []
    for ratio, fill in zip(calibration["iec_contrasts"], fills, strict=True):
        points = [(sphere_volume_ml(m.diameter_mm), m.recovery) for m in measure_fill(fill) if m.recovery > 0]
        fitted = fit_recovery_curve([v for v, _ in points], [r for _, r in points])
        curves.append(
            {
                "sphere_to_background": float(ratio),
                "rc_inf": fitted.rc_inf,
                "v50_ml": fitted.v50_ml,
                "slope": fitted.slope,
                "v_min_ml": fitted.v_min_ml,
                "v_max_ml": fitted.v_max_ml,
                "definition": (
                    "background-free recovery (C_m - C_bg)/(C - C_bg) in the voxel mask of each sphere"
                ),
            }
        )
    res_path.parent.mkdir(parents=True, exist_ok=True)
    res_path.write_text(json.dumps(resolution.as_dict(), indent=1) + "\n", encoding="utf-8")
    rc_path.write_text(json.dumps({"curves": curves}, indent=1) + "\n", encoding="utf-8")
    return res_path, rc_path


# ------------------------------------------------------------------------------------------ study files
def _toml(value: Any) -> str:
    return json.dumps(value)


def write_trial_study(
    patient_dir: Path,
    path: Path,
    *,
    method: str,
    resolution: Path,
    recovery_curve: Path,
    calibration_factor: float | None,
    organ_margin_mm: float,
    organ_kinetics: str = "auto",
) -> Path:
    """Study file for one patient at one site and one method (module docstring); ``organ_kinetics`` is
    the kinetics model of every region that is not a lesion (``[kinetics.models]``; lesions keep
    ``auto``)."""
    if method not in TRIAL_METHODS:
        raise InputError(f"method {method!r} is unknown; choose from {', '.join(TRIAL_METHODS)}")
    import numpy as np

    from theradose.io.nifti import read_nifti

    truth = json.loads((patient_dir / "truth" / "truth.json").read_text(encoding="utf-8"))
    labels = np.asarray(read_nifti(patient_dir / truth["files"]["labels"], unit="label").array)
    present = set(np.unique(labels).tolist())
    # regions with no voxel of their own on this grid (a lesion smaller than the voxels) cannot be drawn
    table: dict[str, int] = {k: int(v) for k, v in truth["label_table"].items() if int(v) in present}
    lesions = [les["name"] for les in truth["lesions"] if les["name"] in table]
    groups = {
        "kidneys": ["kidney_left", "kidney_right"],
        "salivary_glands": ["parotid_left", "parotid_right", "submandibular_left", "submandibular_right"],
        "lacrimal_glands": ["lacrimal_left", "lacrimal_right"],
        "spongiosa_l2_l4": [f"spongiosa_{v}" for v in MARROW_VERTEBRAE],
    }
    lines = [
        f"seed = {int(truth['patient'])}",
        "cycle = 1",
        "",
        "[patient]",
        f"id = {_toml('TRIAL-P' + str(truth['patient']))}",
        'name = "Trial^Patient"',
        'sex = "M"',
        f"weight_kg = {round(float(truth['weight_kg']), 1)!r}",
        "",
        "[administration]",
        f"nuclide = {_toml(truth['nuclide'])}",
        f"radiopharmaceutical = {_toml(truth['radiopharmaceutical'])}",
        f"activity_mbq = {float(truth['injected_activity_mbq'])!r}",
        f"datetime = {truth['injection_datetime']}",
        "",
    ]
    for files in truth["files"]["timepoints"].values():
        lines += [
            "[[timepoints]]",
            f"spect = {_toml(str(patient_dir / files['spect']))}",
            f"ct = {_toml(str(patient_dir / files['ct']))}",
            "",
        ]
    lines += ["[calibration]"]
    if calibration_factor is None:
        lines += ['mode = "bqml"', ""]
    else:
        lines += ['mode = "factor"', f"factor_cps_per_mbq = {calibration_factor!r}", ""]
    lines += [
        "[registration]",
        'method = "rigid"',
        "",
        "[segmentation]",
        'source = "nifti"',
        f"path = {_toml(str(patient_dir / truth['files']['labels']))}",
        f"tumours = {json.dumps(lesions)}",
        "",
        "[segmentation.regions]",
    ]
    for name, value in table.items():
        lines.append(f"{_toml(name)} = {int(value)}")
    for name, members in groups.items():
        values = [table[m] for m in members if m in table]
        if values:
            lines.append(f"{_toml(name)} = {json.dumps(values)}")
    organs = [n for n in [*table, *groups] if n not in lesions and n != "spongiosa_l2_l4"]
    lines += ["", "[kinetics]", 'model = "auto"', ""]
    if organ_kinetics != "auto":
        lines.append("[kinetics.models]")
        for name in [*organs, "spongiosa_l2_l4"]:
            if name in table or name in groups:
                lines.append(f"{_toml(name)} = {_toml(organ_kinetics)}")
        lines.append("")
    lines += ["[dose]", 'engines = ["local"]', "organ = false", ""]
    lines += ["[output]", 'formats = ["json"]', ""]
    if method == "legacy":
        lines += [
            "[pvc]",
            "enabled = true",
            f"recovery_curve = {_toml(str(recovery_curve))}",
            'organs = "enlarged_voi"',
            f"margin_mm = {organ_margin_mm!r}",
            f"organ_regions = {json.dumps([o for o in organs if not o.startswith('spongiosa')])}",
            "",
        ]
    elif method != "none":
        model = "rbv" if method == "rbv" else "gtm"
        lines += ["[pvc]", f'method = "{model}"', f"resolution = {_toml(str(resolution))}"]
        if method == "gtm_phantom":
            lines.append("fit_resolution = false")
        if method == "gtm_rc":
            lines += ['lesions = "recovery_curve"', f"recovery_curve = {_toml(str(recovery_curve))}"]
        lines.append("")
    lines += [
        "[marrow]",
        'region = "spongiosa_l2_l4"',
        f"vertebrae = {json.dumps(list(MARROW_VERTEBRAE))}",
        'sample = "blood"',
        "sample_relative_sd = 0.03",
    ]
    for s in truth["blood_samples"]:
        lines += [
            "",
            "[[marrow.samples]]",
            f"time_h = {float(s['time_h'])!r}",
            f"concentration_bq_per_ml = {float(s['concentration_bq_per_ml'])!r}",
        ]
    lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------ scoring
def kinetics_alone_error_percent(truth: dict[str, Any], region: str, model: str = "auto") -> float | None:
    """Error (%) of the TIA that the pipeline's kinetics make of the region's *true* activities at the
    acquisition times (the fit of :func:`theradose.pipeline.stages.fit_region` with the region's
    ``model`` and the pipeline's per-measurement σ): the part of a dose error that comes from the time
    integration alone, with no imaging, calibration or partial-volume error. ``None`` where the truth has no
    activities for the region."""
    from theradose.pipeline.run import ACTIVITY_RELATIVE_SIGMA
    from theradose.pipeline.spec import KineticsSpec
    from theradose.pipeline.stages import fit_region

    entry = truth["regions"].get(region) or {}
    activities = entry.get("activity_mbq_at_timepoints")
    true_tia = float(entry.get("tia_mbq_h") or 0.0)
    if not activities or not true_tia > 0:
        return None
    fit = fit_region(
        [float(t) for t in truth["timepoints_h"]],
        [float(a) for a in activities],
        kinetics=KineticsSpec(model=model),  # type: ignore[arg-type]
        nuclide=str(truth["nuclide"]),
        region=region,
        relative_sigma=ACTIVITY_RELATIVE_SIGMA,
    )
    return 100.0 * (float(fit.tia_mbq_h) - true_tia) / true_tia


def _relative_error_percent(value: Any, truth: Any) -> float | None:
    """100·(value − truth)/truth, or ``None`` where either is missing or the truth is not positive."""
    if value is None or truth is None or not float(truth) > 0:
        return None
    return 100.0 * (float(value) - float(truth)) / float(truth)


def score_trial_doses(
    doses: dict[str, Any], truth: dict[str, Any], organ_kinetics: str = "auto"
) -> list[dict[str, Any]]:
    """Rows (region, dose, truth, error %, flag, σ, error of the kinetics alone) for the scored regions
    of one run, with the dose error's two factors: the error of the region's TIA (imaging, correction
    and kinetics) and of its mass (the segmentation's volume and the CT's density); dose ∝ TIA / mass."""
    by_name = {r["name"]: r for r in doses["regions"]}
    rows: list[dict[str, Any]] = []
    diameters = {les["name"]: float(les["diameter_mm"]) for les in truth["lesions"]}
    wanted = [*ORGAN_GOALS, "lacrimal_glands", *diameters]
    for name in wanted:
        if name not in by_name or name not in truth["regions"]:
            continue
        entry = by_name[name]
        dose = entry["doses"]["local"]["dose_gy"]
        true = float(truth["regions"][name]["dose_gy"])
        if dose is None or true <= 0:
            continue
        pv = entry.get("partial_volume") or {}
        rows.append(
            {
                "region": name,
                "kind": "lesion" if name in diameters else "organ",
                "diameter_mm": diameters.get(name),
                "dose_gy": float(dose),
                "truth_dose_gy": true,
                "error_percent": 100.0 * (float(dose) - true) / true,
                "sigma_percent": (
                    100.0 * float(entry["doses"]["local"]["dose_sigma_gy"]) / float(dose)
                    if entry["doses"]["local"].get("dose_sigma_gy") is not None and float(dose) > 0
                    else None
                ),
                "below_resolvable_size": bool(pv.get("below_resolvable_size", False)),
                "kinetics_error_percent": kinetics_alone_error_percent(
                    truth, name, "auto" if name in diameters else organ_kinetics
                ),
                "tia_error_percent": _relative_error_percent(
                    entry.get("tia_mbq_h"), truth["regions"][name].get("tia_mbq_h")
                ),
                "mass_error_percent": _relative_error_percent(
                    entry.get("mass_g"), truth["regions"][name].get("mass_g")
                ),
            }
        )
    marrow = doses.get("red_marrow")
    true_marrow = float(truth["red_marrow"]["dose_gy"])
    if isinstance(marrow, dict):
        for method in ("image", "blood"):
            m = marrow.get(method)
            if not isinstance(m, dict) or m.get("self_dose_gy") is None:
                continue
            d = float(m["self_dose_gy"])
            rows.append(
                {
                    "region": f"red_marrow_{method}",
                    "kind": "marrow",
                    "diameter_mm": None,
                    "dose_gy": d,
                    "truth_dose_gy": true_marrow,
                    "error_percent": 100.0 * (d - true_marrow) / true_marrow,
                    "sigma_percent": 100.0 * float(m["self_dose_sigma_gy"]) / d if d > 0 else None,
                    "below_resolvable_size": False,
                    "kinetics_error_percent": None,
                    "tia_error_percent": None,
                    "mass_error_percent": None,
                }
            )
    return rows


def region_class(row: dict[str, Any]) -> str:
    """Table row of a scored region: organs by name, lesions by size class, marrow by method."""
    if row["kind"] == "lesion":
        return "lesions >= 20 mm" if float(row["diameter_mm"]) >= SCORED_LESION_MM else "lesions < 20 mm"
    return str(row["region"])


def trial_table(
    rows: Sequence[dict[str, Any]], methods: Sequence[str], sites: Sequence[str]
) -> list[dict[str, Any]]:
    """Per region class and method: median and max |error| per site and over all sites, the spread between
    sites (coefficient of variation of the sites' doses of the same patient, mean over patients) and,
    per region, the spread between methods (same, over methods; organs and marrow only)."""
    classes = list(dict.fromkeys(region_class(r) for r in rows))
    out: list[dict[str, Any]] = []
    for cls in classes:
        entry: dict[str, Any] = {"region": cls, "methods": {}}
        for m in methods:
            sel = [r for r in rows if region_class(r) == cls and r["method"] == m]
            if not sel:
                continue
            errs = [abs(r["error_percent"]) for r in sel]
            per_site = {}
            for s in sites:
                e = [abs(r["error_percent"]) for r in sel if r["site"] == s]
                if e:
                    per_site[s] = {
                        "median_abs_error_percent": statistics.median(e),
                        "max_abs_error_percent": max(e),
                        "n": len(e),
                    }
            spreads = []
            for key in {(r["patient"], r["region"]) for r in sel}:
                doses = [r["dose_gy"] for r in sel if (r["patient"], r["region"]) == key]
                if len(doses) > 1 and statistics.fmean(doses) > 0:
                    spreads.append(100.0 * statistics.stdev(doses) / statistics.fmean(doses))
            flagged = [r for r in sel if r["below_resolvable_size"]]
            kin = [
                abs(r["kinetics_error_percent"]) for r in sel if r.get("kinetics_error_percent") is not None
            ]
            factors: dict[str, float] = {}
            for factor in ("tia", "mass"):
                vals = [
                    abs(r[f"{factor}_error_percent"])
                    for r in sel
                    if r.get(f"{factor}_error_percent") is not None
                ]
                factors[f"{factor}_median_abs_error_percent"] = statistics.median(vals) if vals else math.nan
                factors[f"{factor}_max_abs_error_percent"] = max(vals) if vals else math.nan
            entry["methods"][m] = {
                **factors,
                "kinetics_alone_median_abs_error_percent": statistics.median(kin) if kin else math.nan,
                "kinetics_alone_max_abs_error_percent": max(kin) if kin else math.nan,
                "median_abs_error_percent": statistics.median(errs),
                "max_abs_error_percent": max(errs),
                "mean_error_percent": statistics.fmean(r["error_percent"] for r in sel),
                "n": len(sel),
                "flagged": len(flagged),
                "sites": per_site,
                "spread_between_sites_percent": statistics.fmean(spreads) if spreads else math.nan,
            }
        spreads_m = []
        for key3 in {(r["patient"], r["site"], r["region"]) for r in rows if region_class(r) == cls}:
            doses = [
                r["dose_gy"]
                for r in rows
                if region_class(r) == cls and (r["patient"], r["site"], r["region"]) == key3
            ]
            if len(doses) > 1 and statistics.fmean(doses) > 0:
                spreads_m.append(100.0 * statistics.stdev(doses) / statistics.fmean(doses))
        entry["spread_between_methods_percent"] = statistics.fmean(spreads_m) if spreads_m else math.nan
        out.append(entry)
    return out


# ------------------------------------------------------------------------------------------ run
def run_trial_benchmark(
    out_dir: str | Path,
    *,
    patients: int = 6,
    sites: Sequence[str] = ("A", "B", "C"),
    methods: Sequence[str] = DEFAULT_METHODS,
    scale: str = "full",
    trial_dir: str | Path | None = None,
    only_patients: Sequence[int] | None = None,
    progress: Callable[[str], None] | None = None,
    organ_kinetics: str = "auto",
) -> TrialBenchmark:
    """Generate (or reuse) the trial and run every method on every patient at every site.

    Parameters
    ----------
    out_dir : path
        Results (``rows.csv``, ``trial_table.json``, ``trial_table.md``, the runs); the trial images are
        in ``out_dir/trial`` unless ``trial_dir`` names another folder.
    patients : int
        Number of virtual patients (seeds 1..N).
    sites : sequence of str
        Site names of ``data/phantoms/trial_sites.toml``.
    methods : sequence of str
        From :data:`TRIAL_METHODS`.
    scale : {"full", "ci"}
        ``"full"``: the sites' own voxels on a 100 × 100 matrix; ``"ci"``: twice the voxel size on 64 (a
        quick check of the plumbing and the gross behaviour, not of the goals).
    trial_dir : path, optional
        Folder of the trial images (generated there if absent).
    only_patients : sequence of int, optional
        Generate and run only these seeds of 1..``patients``: the trial's design stays ``patients``, so
        several processes can share one trial folder (combine their ``rows.csv``).
    organ_kinetics : str
        Kinetics model of the regions that are not lesions (``[kinetics.models]``): ``auto`` (the
        default of every study), or e.g. ``trapezoid_mono``; the rows' method then reads
        ``METHOD/MODEL``.
    """
    from theradose.io.trial import TrialSettings, generate_trial, patient_folders
    from theradose.phantoms.trial.simulate import MATRIX
    from theradose.phantoms.trial.sites import fwhm_at_centre_mm, get_site
    from theradose.pipeline.run import run_study

    say = progress or (lambda _m: None)
    if patients < 1:
        raise InputError(f"--patients must be >= 1; got {patients}")
    if scale not in ("full", "ci"):
        raise InputError(f"--scale must be 'full' or 'ci'; got {scale!r}")
    from typing import get_args

    from theradose.pipeline.spec import KineticsModel

    if organ_kinetics not in get_args(KineticsModel):
        raise InputError(
            f"--organ-kinetics {organ_kinetics!r} is unknown; choose from "
            f"{', '.join(get_args(KineticsModel))}"
        )
    unknown = [m for m in methods if m not in TRIAL_METHODS]
    if unknown:
        raise InputError(f"method {unknown[0]!r} is unknown; choose from {', '.join(TRIAL_METHODS)}")
    for s in sites:
        get_site(s)
    if only_patients is not None:
        outside = [p for p in only_patients if not 1 <= int(p) <= patients]
        if outside or not only_patients:
            shown = outside[0] if outside else "(none)"
            raise InputError(
                f"--only-patients {shown}: choose seeds between 1 and --patients {patients}, e.g. 1,2"
            )
    started = time.perf_counter()
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and any(out.iterdir()) and not (out / "benchmark_trial.json").is_file():
        raise InputError(
            f"--out {out} exists and is not a trial benchmark folder: choose a new folder or empty it"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark_trial.json").write_text(
        json.dumps({"format": "theradose-trial-benchmark"}) + "\n", encoding="utf-8"
    )
    settings = TrialSettings(
        patients=tuple(range(1, patients + 1)),
        sites=tuple(sites),
        matrix=MATRIX if scale == "full" else 64,
        voxel_scale=1.0 if scale == "full" else 2.0,
    )
    trial = Path(trial_dir).expanduser().resolve() if trial_dir is not None else out / "trial"
    chosen = None if only_patients is None else sorted({int(p) for p in only_patients})
    generate_trial(trial, settings, progress=say, only_patients=chosen)
    rows: list[dict[str, Any]] = []
    qa = {s: site_qa(trial, s) for s in sites}
    for seed, site, folder in patient_folders(trial, settings):
        if chosen is not None and seed not in chosen:
            continue
        truth = json.loads((folder / "truth" / "truth.json").read_text(encoding="utf-8"))
        calibration = json.loads((trial / "sites" / site / "calibration.json").read_text(encoding="utf-8"))
        style = calibration["site"]["style"]
        factor = float(calibration["calibration_factor_cps_per_mbq"]) if style == "counts" else None
        margin = round(float(fwhm_at_centre_mm(get_site(site))), 1)
        for method in methods:
            label = method if organ_kinetics == "auto" else f"{method}/{organ_kinetics}"
            stem = label.replace("/", "_")
            say(f"patient {seed} site {site}: {label}")
            study = write_trial_study(
                folder,
                out / "studies" / f"P{seed}_{site}_{stem}.toml",
                method=method,
                resolution=qa[site][0],
                recovery_curve=qa[site][1],
                calibration_factor=factor,
                organ_margin_mm=margin,
                organ_kinetics=organ_kinetics,
            )
            t0 = time.perf_counter()
            result = run_study(
                study, out / "runs" / f"P{seed}_{site}_{stem}", cache_dir=out / ".cache" / f"P{seed}_{site}"
            )
            elapsed = time.perf_counter() - t0
            for r in score_trial_doses(result.doses.to_dict(), truth, organ_kinetics):
                rows.append({"patient": seed, "site": site, "method": label, "run_s": round(elapsed, 1), **r})
    labels = [m if organ_kinetics == "auto" else f"{m}/{organ_kinetics}" for m in methods]
    table = trial_table(rows, labels, list(sites))
    files = write_trial_tables(out, rows, table, labels, sites)
    return TrialBenchmark(
        tuple(rows), tuple(table), files, time.perf_counter() - started, tuple(labels), tuple(sites)
    )


def write_trial_tables(
    out: Path,
    rows: Sequence[dict[str, Any]],
    table: Sequence[dict[str, Any]],
    methods: Sequence[str],
    sites: Sequence[str],
) -> tuple[Path, ...]:
    """``rows.csv``, ``trial_table.json`` and ``trial_table.md`` (the harmonisation table)."""
    buf = io.StringIO()
    fields = ["patient", "site", "method", "region", "kind", "diameter_mm", "dose_gy", "truth_dose_gy",
              "error_percent", "sigma_percent", "below_resolvable_size", "kinetics_error_percent",
              "tia_error_percent", "mass_error_percent",
              "run_s"]  # fmt: skip
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    (out / "rows.csv").write_text(buf.getvalue(), encoding="utf-8")

    def clean(value: Any) -> Any:
        if isinstance(value, float):
            return None if not math.isfinite(value) else round(value, 3)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    (out / "trial_table.json").write_text(
        json.dumps({"methods": list(methods), "sites": list(sites), "regions": clean(list(table))}, indent=1)
        + "\n",
        encoding="utf-8",
    )
    (out / "trial_table.md").write_text(trial_table_markdown(table, methods, sites), encoding="utf-8")
    return (out / "rows.csv", out / "trial_table.json", out / "trial_table.md")


def trial_table_markdown(
    table: Sequence[dict[str, Any]], methods: Sequence[str], sites: Sequence[str]
) -> str:
    """The harmonisation table: per region and method, median / max |error| (%) per site and overall."""
    head = [
        "region",
        "method",
        *(f"site {s}" for s in sites),
        "all sites",
        "mean error",
        "spread sites",
        "flagged",
        "kinetics alone",
        "TIA",
        "mass",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for entry in table:
        for m in methods:
            e = entry["methods"].get(m)
            if e is None:
                continue
            cells = [entry["region"], m]
            for s in sites:
                v = e["sites"].get(s)
                cells.append(
                    "—"
                    if v is None
                    else f"{v['median_abs_error_percent']:.1f} / {v['max_abs_error_percent']:.1f}"
                )
            cells.append(f"{e['median_abs_error_percent']:.1f} / {e['max_abs_error_percent']:.1f}")
            cells.append(f"{e['mean_error_percent']:+.1f}")
            sp = e["spread_between_sites_percent"]
            cells.append("—" if not math.isfinite(sp) else f"{sp:.1f}")
            cells.append(f"{e['flagged']}/{e['n']}")
            km = e.get("kinetics_alone_median_abs_error_percent", math.nan)
            kx = e.get("kinetics_alone_max_abs_error_percent", math.nan)
            cells.append("—" if not math.isfinite(km) else f"{km:.1f} / {kx:.1f}")
            for key in ("tia", "mass"):
                fm = e.get(f"{key}_median_abs_error_percent", math.nan)
                fx = e.get(f"{key}_max_abs_error_percent", math.nan)
                cells.append("—" if not math.isfinite(fm) else f"{fm:.1f} / {fx:.1f}")
            lines.append("| " + " | ".join(cells) + " |")
        sm = entry["spread_between_methods_percent"]
        lines.append(
            f"| {entry['region']} | spread between methods | "
            + " | ".join([""] * (len(sites)))
            + f" | {'—' if not math.isfinite(sm) else f'{sm:.1f}'} | | | | | | |"
        )
    return "\n".join(lines) + "\n"
