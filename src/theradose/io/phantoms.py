"""Write simulated studies to disk as a clinic would have them, with the truth alongside.

Patient study layout (``DIR``)::

    DIR/tp_4h/ct/CT_0001.dcm ...      CT series (HU), one per time point
    DIR/tp_4h/spect/NM_0001.dcm       reconstructed SPECT, multi-frame NM in Bq/mL (BQML)
    ...
    DIR/truth/labels.nii.gz           label map (values in truth.json "label_table")
    DIR/truth/tia_mbq_h.nii.gz        truth time-integrated activity per voxel
    DIR/truth/dose_gy.nii.gz          truth absorbed dose per voxel
    DIR/truth/truth.json              per region mass_g, tia_mbq_h, dose_gy; kinetics, seed, settings

The folder is written under a temporary name in the same parent and renamed at the end, so an
interrupted run never leaves a folder that looks complete. DICOM is written with
:mod:`theradose.io.dicom`; this module is the I/O edge of the simulator (:mod:`theradose.phantoms`).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from theradose.errors import InputError
from theradose.phantoms.anatomy import Grid
from theradose.phantoms.physical import PhysicalPhantom, phantom_volume_ml
from theradose.phantoms.study import PatientStudy

#: Injection time of every simulated study unless another is given (fixed: reproducible files).
DEFAULT_INJECTION_DATETIME = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
TRUTH_FORMAT = "theradose-phantom-truth"
TRUTH_VERSION = 1


@dataclass(frozen=True)
class WrittenStudy:
    """Paths of a written study (absolute)."""

    root: Path
    ct_dirs: tuple[Path, ...]
    spect_files: tuple[Path, ...]
    truth_json: Path
    truth_files: tuple[Path, ...]


def timepoint_folder(time_h: float) -> str:
    """Folder name of a time point: ``tp_4h``, ``tp_24h``, ``tp_4.5h``."""
    return f"tp_{time_h:g}h"


def check_new_folder(out_dir: str | Path) -> Path:
    """The resolved ``out_dir`` if it does not exist or is an empty folder; else :class:`InputError`."""
    target = Path(out_dir).expanduser().resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InputError(
            f"--out {target} exists and is not an empty folder: choose a new folder or remove it"
        )
    return target


@contextmanager
def _atomic_folder(out_dir: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; rename it to ``out_dir`` on success, delete it on failure."""
    target = check_new_folder(out_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:8]}"
    temp.mkdir()
    try:
        yield temp
        if target.exists():
            target.rmdir()
        os.replace(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def _volume(array: npt.NDArray[Any], grid: Grid, unit: str, **kwargs: Any) -> Any:
    from theradose.imaging.volume import Volume

    return Volume(array=array, affine=grid.affine(), unit=unit, **kwargs)  # type: ignore[arg-type]


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def write_patient_study(
    study: PatientStudy,
    out_dir: str | Path,
    *,
    injection_datetime: datetime = DEFAULT_INJECTION_DATETIME,
    progress: Callable[[str], None] | None = None,
) -> WrittenStudy:
    """Write ``study`` as DICOM CT + NM series per time point plus the truth folder.

    Parameters
    ----------
    study : PatientStudy
        Output of :func:`~theradose.phantoms.study.simulate_patient_study`.
    out_dir : path
        Target folder; must not exist or be empty.
    injection_datetime : datetime
        Administration time (timezone-aware); acquisitions are at injection + time point.
    progress : callable or None
        Called with a short message per written item.

    Returns
    -------
    WrittenStudy
        Paths under the final folder.
    """
    from theradose.io.dicom import PatientInfo, RadiopharmaceuticalInfo, write_ct_series, write_nm_series
    from theradose.io.dicom.write import new_uid
    from theradose.io.nifti import write_nifti
    from theradose.units import gram_to_kg

    if injection_datetime.tzinfo is None:
        raise InputError("injection_datetime must be timezone-aware (e.g. datetime(..., tzinfo=UTC))")
    say = progress or (lambda _msg: None)
    anatomy = study.anatomy
    grid = anatomy.grid
    kin = study.kinetics
    body_mass_kg = float(gram_to_kg(float(anatomy.density_g_per_ml.sum()) * grid.voxel_volume_ml))
    patient = PatientInfo(
        name=f"Phantom^{kin.tracer.upper()}{study.seed}",
        patient_id=f"PHANTOM-{kin.tracer.upper()}-{study.seed}",
        sex="M" if kin.tracer == "psma" else "O",
        weight_kg=round(body_mass_kg, 1),
    )
    radiopharmaceutical = RadiopharmaceuticalInfo(
        nuclide=kin.nuclide,
        radiopharmaceutical=kin.radiopharmaceutical,
        injected_activity_mbq=kin.injected_activity_mbq,
        injection_datetime=injection_datetime,
    )
    target = Path(out_dir).expanduser().resolve()
    ct_dirs: list[Path] = []
    spect_files: list[Path] = []
    with _atomic_folder(target) as tmp:
        for tp in study.timepoints:
            folder = tmp / timepoint_folder(tp.time_h)
            acquired = injection_datetime + timedelta(hours=tp.time_h)
            study_uid = new_uid()
            frame_uid = new_uid()
            say(f"DICOM {timepoint_folder(tp.time_h)}")
            ct = _volume(
                np.rint(anatomy.hu).astype(np.int16),
                grid,
                "HU",
                frame_uid=frame_uid,
                acquisition_datetime=acquired,
            )
            write_ct_series(
                ct,
                folder / "ct",
                patient=patient,
                study_uid=study_uid,
                frame_uid=frame_uid,
                series_description=f"CT {tp.time_h:g}h p.i. (phantom)",
                study_datetime=acquired,
            )
            spect = _volume(
                tp.reconstruction.concentration_bq_per_ml.astype(np.float32),
                grid,
                "Bq/mL",
                frame_uid=frame_uid,
                acquisition_datetime=acquired,
            )
            nm = write_nm_series(
                spect,
                folder / "spect",
                patient=patient,
                radiopharmaceutical=radiopharmaceutical,
                study_uid=study_uid,
                frame_uid=frame_uid,
                series_description=(
                    f"SPECT {tp.time_h:g}h p.i. OSEM {study.iterations}i{study.subsets}s AC RM (phantom)"
                ),
                study_datetime=acquired,
                frame_duration_s=study.system.time_per_view_s,
                n_projections=study.system.n_views // study.system.n_heads,
                n_detectors=study.system.n_heads,
                energy_windows_kev=((187.5, 229.2),),
            )
            ct_dirs.append(target / _rel(folder / "ct", tmp))
            spect_files.append(target / _rel(nm, tmp))
        say("truth")
        truth_dir = tmp / "truth"
        files = [
            write_nifti(_volume(anatomy.labels, grid, "label"), truth_dir / "labels.nii.gz"),
            write_nifti(
                _volume(study.tia_map_mbq_h.astype(np.float32), grid, "MBq·h"), truth_dir / "tia_mbq_h.nii.gz"
            ),
            write_nifti(
                _volume(study.dose.dose_gy.astype(np.float32), grid, "Gy"), truth_dir / "dose_gy.nii.gz"
            ),
        ]
        truth = study_truth(study, injection_datetime=injection_datetime)
        truth["files"] = {
            "labels": "truth/labels.nii.gz",
            "tia_mbq_h": "truth/tia_mbq_h.nii.gz",
            "dose_gy": "truth/dose_gy.nii.gz",
            "timepoints": {
                timepoint_folder(tp.time_h): {
                    "ct": f"{timepoint_folder(tp.time_h)}/ct",
                    "spect": _rel(spect_file, target),
                }
                for tp, spect_file in zip(study.timepoints, spect_files, strict=True)
            },
        }
        truth_json = truth_dir / "truth.json"
        truth_json.write_text(json.dumps(_jsonable(truth), indent=2), encoding="utf-8")
        truth_files = tuple(target / _rel(p, tmp) for p in files)
    return WrittenStudy(
        root=target,
        ct_dirs=tuple(ct_dirs),
        spect_files=tuple(spect_files),
        truth_json=target / "truth" / "truth.json",
        truth_files=truth_files,
    )


def study_truth(
    study: PatientStudy, *, injection_datetime: datetime = DEFAULT_INJECTION_DATETIME
) -> dict[str, Any]:
    """The truth of a study as a JSON-ready dict (regions, label table, kinetics, seed, settings)."""
    anatomy = study.anatomy
    kin = study.kinetics
    times = [tp.time_h for tp in study.timepoints]
    activity_by_region: dict[str, list[float]] = {}
    for name in anatomy.region_names():
        mask = anatomy.mask(name)
        activity_by_region[name] = [float(tp.true_activity_mbq[mask].sum()) for tp in study.timepoints]
    system = study.system
    return {
        "format": TRUTH_FORMAT,
        "version": TRUTH_VERSION,
        "seed": study.seed,
        "tracer": kin.tracer,
        "radiopharmaceutical": kin.radiopharmaceutical,
        "nuclide": kin.nuclide,
        "injected_activity_mbq": kin.injected_activity_mbq,
        "injection_datetime": injection_datetime.isoformat(),
        "timepoints_h": times,
        "grid": {
            "shape": list(anatomy.grid.shape),
            "spacing_mm": list(anatomy.grid.spacing_mm),
            "affine_lps": anatomy.grid.affine().tolist(),
            "axis_order": ["slice", "row", "column"],
        },
        "label_table": dict(anatomy.label_table),
        "tumours": [
            {
                "name": t.name,
                "label": t.label,
                "site": t.site,
                "centre_mm": list(t.centre_mm),
                "diameter_mm": t.diameter_mm,
            }
            for t in anatomy.tumours
        ],
        "anatomy_scales": dict(anatomy.scales),
        "regions": {
            r.name: {
                "labels": list(anatomy.region_labels(r.name)),
                "mass_g": r.mass_g,
                "tia_mbq_h": r.tia_mbq_h,
                "dose_gy": r.dose_gy,
                "activity_mbq_at_timepoints": activity_by_region[r.name],
            }
            for r in study.regions
        },
        "kinetics": {
            "model": "A(t) = A0 f sum_j w_j [exp(-(l_j+l_p) t) - exp(-(l_j+l_u+l_p) t)]",
            "decay_constant_per_h": kin.decay_constant_per_h,
            "compartments": kin.parameters(),
        },
        "dose_engine": {"name": study.dose.engine, "description": study.dose.description},
        "spect": {
            "photopeak_kev": system.photopeak_kev,
            "collimator_fwhm_mm": {
                "intercept_mm": system.collimator.fwhm_intercept_mm,
                "slope": system.collimator.fwhm_slope,
            },
            "sensitivity_cps_per_mbq": system.sensitivity_cps_per_mbq,
            "n_views": system.n_views,
            "time_per_view_s": system.time_per_view_s,
            "radius_mm": system.radius_mm,
            "n_heads": system.n_heads,
            "scatter": system.scatter,
            "reconstruction": {
                "algorithm": "OSEM",
                "iterations": study.iterations,
                "subsets": study.subsets,
                "attenuation_correction": True,
                "resolution_modelling": True,
                "scatter_correction": "convolution" if system.scatter == "convolution" else "none",
            },
            "total_counts": [tp.total_counts for tp in study.timepoints],
        },
    }


def write_physical_phantom(
    phantom: PhysicalPhantom,
    reconstruction_bq_per_ml: npt.NDArray[np.float64],
    out_dir: str | Path,
    *,
    acquisition_datetime: datetime = DEFAULT_INJECTION_DATETIME,
    extra: dict[str, Any] | None = None,
    counts_acquisition: tuple[float, int, int] | None = None,
) -> WrittenStudy:
    """Write a physical phantom acquisition: ``ct/``, ``spect/`` (Bq/mL), ``truth/`` (labels, truth, JSON).

    The "administered" activity is the phantom's total activity at ``acquisition_datetime``. With
    ``counts_acquisition = (frame_duration_s, projections_per_head, heads)`` the reconstruction is written as
    uncalibrated counts (as a camera exports it before calibration), for calibration-factor measurements.
    """
    from theradose.io.dicom import PatientInfo, RadiopharmaceuticalInfo, write_ct_series, write_nm_series
    from theradose.io.dicom.write import new_uid
    from theradose.io.nifti import write_nifti

    grid = phantom.grid
    total_mbq = float(phantom.activity_mbq.sum())
    patient = PatientInfo(name=f"QA^{phantom.name}", patient_id=f"QA-{phantom.name}"[:64])
    target = Path(out_dir).expanduser().resolve()
    with _atomic_folder(target) as tmp:
        study_uid, frame_uid = new_uid(), new_uid()
        ct = _volume(
            np.rint(phantom.hu).astype(np.int16),
            grid,
            "HU",
            frame_uid=frame_uid,
            acquisition_datetime=acquisition_datetime,
        )
        write_ct_series(
            ct,
            tmp / "ct",
            patient=patient,
            study_uid=study_uid,
            frame_uid=frame_uid,
            series_description=f"CT {phantom.name}",
            study_datetime=acquisition_datetime,
        )
        spect = _volume(
            reconstruction_bq_per_ml.astype(np.float32),
            grid,
            "Bq/mL" if counts_acquisition is None else "counts",
            frame_uid=frame_uid,
            acquisition_datetime=acquisition_datetime,
        )
        timing: dict[str, Any] = {}
        if counts_acquisition is not None:
            frame_s, projections, heads = counts_acquisition
            timing = {"frame_duration_s": frame_s, "n_projections": projections, "n_detectors": heads}
        nm = write_nm_series(
            spect,
            tmp / "spect",
            patient=patient,
            radiopharmaceutical=RadiopharmaceuticalInfo(
                "Lu-177", "177LuCl3 (phantom filling)", total_mbq, acquisition_datetime
            ),
            study_uid=study_uid,
            frame_uid=frame_uid,
            series_description=f"SPECT {phantom.name} (phantom)",
            study_datetime=acquisition_datetime,
            **timing,
        )
        truth_dir = tmp / "truth"
        files = [
            write_nifti(_volume(phantom.labels, grid, "label"), truth_dir / "labels.nii.gz"),
            write_nifti(
                _volume(phantom.concentration_bq_per_ml.astype(np.float32), grid, "Bq/mL"),
                truth_dir / "concentration_bq_per_ml.nii.gz",
            ),
        ]
        truth: dict[str, Any] = {
            "format": TRUTH_FORMAT,
            "version": TRUTH_VERSION,
            "phantom": phantom.name,
            "nuclide": "Lu-177",
            "total_activity_mbq": total_mbq,
            "acquisition_datetime": acquisition_datetime.isoformat(),
            "background_concentration_bq_per_ml": phantom.background_concentration_bq_per_ml,
            "sphere_concentration_bq_per_ml": phantom.sphere_concentration_bq_per_ml,
            "label_table": dict(phantom.label_table),
            "spheres": [
                {
                    "diameter_mm": d,
                    "label": phantom.label_table[f"sphere_{int(d)}mm"],
                    "centre_mm": list(c),
                    "volume_ml": float(4.0 / 3.0 * np.pi * (d / 20.0) ** 3),
                    "voxelised_volume_ml": phantom_volume_ml(
                        phantom, phantom.label_table[f"sphere_{int(d)}mm"]
                    ),
                }
                for d, c in zip(phantom.sphere_diameters_mm, phantom.sphere_centres_mm, strict=True)
            ],
            "grid": {
                "shape": list(grid.shape),
                "spacing_mm": list(grid.spacing_mm),
                "affine_lps": grid.affine().tolist(),
            },
            "files": {
                "ct": "ct",
                "spect": _rel(nm, tmp),
                "labels": "truth/labels.nii.gz",
                "concentration_bq_per_ml": "truth/concentration_bq_per_ml.nii.gz",
            },
        }
        if extra:
            truth.update(extra)
        (truth_dir / "truth.json").write_text(json.dumps(_jsonable(truth), indent=2), encoding="utf-8")
        truth_files = tuple(target / _rel(p, tmp) for p in files)
        spect_file = target / _rel(nm, tmp)
    return WrittenStudy(
        root=target,
        ct_dirs=(target / "ct",),
        spect_files=(spect_file,),
        truth_json=target / "truth" / "truth.json",
        truth_files=truth_files,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
