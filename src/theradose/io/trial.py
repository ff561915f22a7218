"""Write the virtual trial to disk as the sites would send it, with the truth alongside.

Layout of ``OUT``::

    OUT/trial.json                                 what was generated (patients, sites, times)
    OUT/sites/<S>/calibration.json                 calibration factor (cylinder), acquisition timing
    OUT/sites/<S>/cylinder/{ct,spect,truth}        uniform cylinder, reconstruction in counts
    OUT/sites/<S>/iec_10/{ct,spect,truth}          IEC fills, reconstruction calibrated to Bq/mL
    OUT/sites/<S>/iec_40/...
    OUT/patients/<P>/<S>/tp_<t>h/{ct,spect}        CT (HU) and SPECT in the site's DICOM style
    OUT/patients/<P>/<S>/truth/labels.nii.gz       segmentation (majority region per voxel, reference pose)
    OUT/patients/<P>/<S>/truth/truth.json          regions' mass, TIA, dose; red marrow; blood samples; site

Every folder is written under a temporary name and renamed when complete; a folder that exists is reused,
so an interrupted generation resumes where it stopped. DICOM is written with :mod:`theradose.io.dicom`
(this module is the I/O edge of the trial generator, :mod:`theradose.phantoms.trial`).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from theradose.errors import InputError
from theradose.phantoms.trial.anatomy import grid_for, sample_patient
from theradose.phantoms.trial.kinetics import sample_kinetics
from theradose.phantoms.trial.simulate import (
    IEC_CONTRASTS,
    MATRIX,
    SiteCalibration,
    calibrate_site,
    image_patient,
    motion_for,
)
from theradose.phantoms.trial.sites import Site, acquisition_duration_s, describe, get_site
from theradose.phantoms.trial.truth import patient_truth

#: Administration time of every trial patient (fixed: reproducible files).
INJECTION_DATETIME = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
#: Imaging times (h after administration).
TRIAL_TIMEPOINTS_H = (4.0, 24.0, 96.0, 168.0)
#: Administered activity (MBq): standard 177Lu-PSMA-617 cycle.
TRIAL_ACTIVITY_MBQ = 7400.0
TRIAL_FORMAT = "theradose-trial"
TRIAL_VERSION = 1


@dataclass(frozen=True)
class TrialSettings:
    """What to generate: patients (seeds), sites, matrix and voxel scale (1: the sites' own voxels)."""

    patients: tuple[int, ...]
    sites: tuple[str, ...]
    matrix: int = MATRIX
    voxel_scale: float = 1.0
    timepoints_h: tuple[float, ...] = TRIAL_TIMEPOINTS_H
    lesions: int = 4

    def as_dict(self) -> dict[str, Any]:
        return {
            "patients": list(self.patients),
            "sites": list(self.sites),
            "matrix": self.matrix,
            "voxel_scale": self.voxel_scale,
            "timepoints_h": list(self.timepoints_h),
            "lesions": self.lesions,
        }


def _site_for(name: str, settings: TrialSettings) -> Site:
    from dataclasses import replace

    site = get_site(name)
    return (
        site if settings.voxel_scale == 1.0 else replace(site, voxel_mm=site.voxel_mm * settings.voxel_scale)
    )


def _atomic(target: Path) -> tuple[Path, Callable[[], None]]:
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:8]}"
    temp.mkdir()

    def commit() -> None:
        os.replace(temp, target)

    return temp, commit


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_site_calibration(cal: SiteCalibration, folder: Path) -> None:
    """Cylinder (counts), IEC fills (Bq/mL with the site's factor) and ``calibration.json``."""
    from theradose.io.phantoms import write_physical_phantom

    site = cal.site
    frame_s = site.system.time_per_view_s
    per_head = site.system.n_views // site.system.n_heads
    temp, commit = _atomic(folder)
    try:
        write_physical_phantom(
            cal.cylinder.phantom,
            cal.cylinder.counts,
            temp / "cylinder",
            acquisition_datetime=INJECTION_DATETIME,
            counts_acquisition=(frame_s, per_head, site.system.n_heads),
            extra={"activity_mbq_at_acquisition": cal.cylinder.activity_mbq},
        )
        for ratio, fill in zip(IEC_CONTRASTS, cal.iec, strict=True):
            write_physical_phantom(
                fill.phantom,
                cal.to_bq_per_ml(fill.counts),
                temp / f"iec_{ratio:g}",
                acquisition_datetime=INJECTION_DATETIME,
                extra={"sphere_to_background": ratio, "site": site.name},
            )
        (temp / "calibration.json").write_text(
            json.dumps(
                {
                    "site": describe(site),
                    "calibration_factor_cps_per_mbq": cal.calibration_factor_cps_per_mbq,
                    "cylinder_activity_mbq": cal.cylinder.activity_mbq,
                    "acquisition_duration_s": acquisition_duration_s(site),
                    "iec_contrasts": list(IEC_CONTRASTS),
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    commit()


def _write_nm(volume_counts: Any, cal: SiteCalibration, out: Path, **common: Any) -> Path:
    """One reconstructed SPECT in the site's DICOM style."""
    from theradose.io.dicom import write_nm_series

    site = cal.site
    frame_s = site.system.time_per_view_s
    per_head = site.system.n_views // site.system.n_heads
    if site.style == "bqml":
        bq = volume_counts.with_array(
            cal.to_bq_per_ml(np.asarray(volume_counts.array)).astype(np.float32), unit="Bq/mL"
        )
        return Path(write_nm_series(bq, out, manufacturer=site.manufacturer, **common))
    timing: dict[str, Any] = {
        "frame_duration_s": frame_s,
        "n_projections": per_head,
        "n_detectors": site.system.n_heads,
    }
    if site.style == "rwvm":
        return Path(
            write_nm_series(
                volume_counts,
                out,
                manufacturer=site.manufacturer,
                calibration_cps_per_mbq=cal.calibration_factor_cps_per_mbq,
                **timing,
                **common,
            )
        )
    path = Path(write_nm_series(volume_counts, out, manufacturer=site.manufacturer, **timing, **common))
    _ge_top_level_geometry(path)
    return path


def _ge_top_level_geometry(path: Path) -> None:
    """GE-style multi-frame NM: image position and orientation also at the top level of the dataset."""
    import pydicom

    ds = pydicom.dcmread(path)
    det = ds.DetectorInformationSequence[0]
    ds.ImagePositionPatient = det.ImagePositionPatient
    ds.ImageOrientationPatient = det.ImageOrientationPatient
    ds.save_as(path, enforce_file_format=True)


def write_patient_at_site(
    seed: int,
    site_name: str,
    settings: TrialSettings,
    cal: SiteCalibration,
    folder: Path,
    *,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Simulate patient ``seed`` at a site and write DICOM, labels and truth into ``folder``."""
    from theradose.imaging.volume import Volume
    from theradose.io.dicom import PatientInfo, RadiopharmaceuticalInfo, write_ct_series
    from theradose.io.dicom.write import new_uid
    from theradose.io.nifti import write_nifti
    from theradose.nuclides import get_nuclide
    from theradose.phantoms.trial.anatomy import voxelise

    say = progress or (lambda _m: None)
    site = cal.site
    site_index = settings.sites.index(site_name)
    patient = sample_patient(seed, lesions=settings.lesions)
    grid = grid_for(patient, n=settings.matrix, spacing_mm=site.voxel_mm)
    say(f"patient {seed} at site {site_name}: voxelising")
    reference = voxelise(patient, grid)
    volumes = {name: float(arr.sum()) * grid.voxel_ml for name, (_b, arr) in reference.fractions.items()}
    nuclide = get_nuclide("Lu-177")
    kinetics = sample_kinetics(
        patient,
        activity_mbq=TRIAL_ACTIVITY_MBQ,
        nuclide_decay_constant_per_h=float(nuclide.decay_constant_per_h),
        part_volume_ml=volumes,
    )
    motion = motion_for(seed, site_index)
    imaged = image_patient(
        patient,
        kinetics,
        site,
        times_h=settings.timepoints_h,
        motion=motion,
        seed=1000 * seed + 17 * site_index + 1,
        reference=reference,
        progress=say,
    )
    truth = patient_truth(
        patient,
        kinetics,
        reference,
        electron_energy_mev=float(nuclide.electron_energy_mev_per_decay),
        times_h=settings.timepoints_h,
    )
    info = PatientInfo(
        name=f"Trial^P{seed}",
        patient_id=f"TRIAL-P{seed}",
        sex="M",
        weight_kg=round(kinetics.weight_kg, 1),
    )
    rp = RadiopharmaceuticalInfo("Lu-177", "177Lu-PSMA-617", TRIAL_ACTIVITY_MBQ, INJECTION_DATETIME)
    temp, commit = _atomic(folder)
    try:
        affine = grid.affine()
        files: dict[str, dict[str, str]] = {}
        for tp in imaged.timepoints:
            name = f"tp_{tp.time_h:g}h"
            acquired = INJECTION_DATETIME + timedelta(hours=tp.time_h)
            study_uid, frame_uid = new_uid(), new_uid()
            ct = Volume(
                np.rint(tp.hu).astype(np.int16),
                affine,
                "HU",
                frame_uid=frame_uid,
                acquisition_datetime=acquired,
            )
            write_ct_series(
                ct,
                temp / name / "ct",
                patient=info,
                study_uid=study_uid,
                frame_uid=frame_uid,
                series_description=f"CT {tp.time_h:g}h p.i.",
                study_datetime=acquired,
                manufacturer=site.manufacturer,
            )
            counts = Volume(
                tp.counts.astype(np.float32),
                affine,
                "counts",
                frame_uid=frame_uid,
                acquisition_datetime=acquired,
            )
            _write_nm(
                counts,
                cal,
                temp / name / "spect",
                patient=info,
                radiopharmaceutical=rp,
                study_uid=study_uid,
                frame_uid=frame_uid,
                series_description=f"SPECT {tp.time_h:g}h p.i. OSEM {site.iterations}i{site.subsets}s",
                study_datetime=acquired,
                energy_windows_kev=((187.5, 229.2),),
            )
            files[name] = {"ct": f"{name}/ct", "spect": f"{name}/spect"}
        (temp / "truth").mkdir()
        write_nifti(
            Volume(reference.region_labels.astype(np.int16), affine, "label"),
            temp / "truth" / "labels.nii.gz",
        )
        document = {
            "format": TRIAL_FORMAT,
            "version": TRIAL_VERSION,
            "patient": seed,
            "site": describe(site),
            "calibration_factor_cps_per_mbq": cal.calibration_factor_cps_per_mbq,
            "nuclide": "Lu-177",
            "radiopharmaceutical": "177Lu-PSMA-617",
            "injected_activity_mbq": TRIAL_ACTIVITY_MBQ,
            "injection_datetime": INJECTION_DATETIME.isoformat(),
            "timepoints_h": list(settings.timepoints_h),
            "weight_kg": kinetics.weight_kg,
            "haematocrit": kinetics.haematocrit,
            "blood_samples": [
                {"time_h": s.time_h, "concentration_bq_per_ml": s.concentration_bq_per_ml}
                for s in kinetics.blood_samples
            ],
            "label_table": dict(reference.region_table),
            "grid": {"shape": list(grid.shape), "spacing_mm": grid.spacing_mm, "affine_lps": affine.tolist()},
            "motion": {
                str(i): {
                    "rotation_z_deg": p.rotation_z_deg,
                    "rotation_x_deg": p.rotation_x_deg,
                    "shift_mm": list(p.shift_mm),
                }
                for i, p in motion.items()
            },
            "files": {"labels": "truth/labels.nii.gz", "timepoints": files},
            "anatomy_draws": dict(patient.draws),
            "kinetics_draws": dict(kinetics.draws),
            "truth_method": (
                "local deposition of the ICRP 107 electron energy, analytic time integrals "
                "(theradose.phantoms.trial.truth)"
            ),
            **truth,
        }
        (temp / "truth" / "truth.json").write_text(
            json.dumps(_jsonable(document), indent=1) + "\n", encoding="utf-8"
        )
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    commit()


def generate_trial(
    out_dir: str | Path,
    settings: TrialSettings,
    *,
    progress: Callable[[str], None] | None = None,
    only_patients: Sequence[int] | None = None,
) -> Path:
    """Generate (or complete) the trial in ``out_dir`` (module docstring); returns the folder.

    ``only_patients`` restricts this call to some of the settings' patients (several processes can then
    share the work; each folder appears only when complete).
    """
    say = progress or (lambda _m: None)
    out = Path(out_dir).expanduser().resolve()
    marker = out / "trial.json"
    if out.exists() and any(out.iterdir()):
        if not marker.is_file():
            raise InputError(f"--out {out} exists and is not a trial folder: choose a new folder or empty it")
        if json.loads(marker.read_text(encoding="utf-8")).get("settings") != settings.as_dict():
            raise InputError(f"--out {out} holds a trial with other settings: choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    if not marker.is_file():
        # written under a temporary name and renamed: a process sharing the folder never reads half of it
        partial = out / f".trial.json.partial-{uuid.uuid4().hex[:8]}"
        partial.write_text(
            json.dumps({"format": TRIAL_FORMAT, "settings": settings.as_dict()}, indent=2) + "\n",
            encoding="utf-8",
        )
        os.replace(partial, marker)
    for name in settings.sites:
        site = _site_for(name, settings)
        folder = out / "sites" / name
        if not (folder / "calibration.json").is_file():
            cal = calibrate_site(site, seed=1 + settings.sites.index(name), progress=say)
            write_site_calibration(cal, folder)
    for seed in settings.patients:
        if only_patients is not None and seed not in only_patients:
            continue
        for name in settings.sites:
            folder = out / "patients" / f"P{seed}" / name
            if (folder / "truth" / "truth.json").is_file():
                continue
            cal = load_calibration(out, name, settings)
            write_patient_at_site(seed, name, settings, cal, folder, progress=say)
    return out


def load_calibration(out: Path, site_name: str, settings: TrialSettings) -> SiteCalibration:
    """The site's calibration factor from ``calibration.json`` (phantom images are not reloaded)."""
    from theradose.phantoms.physical import uniform_cylinder
    from theradose.phantoms.trial.simulate import PhantomAcquisition

    data = json.loads((out / "sites" / site_name / "calibration.json").read_text(encoding="utf-8"))
    site = _site_for(site_name, settings)
    dummy = PhantomAcquisition(
        uniform_cylinder(spacing_mm=site.voxel_mm, shape=(1, 1, 1)), np.zeros((1, 1, 1)), 0.0
    )
    return SiteCalibration(site, float(data["calibration_factor_cps_per_mbq"]), dummy, ())


def patient_folders(out: Path, settings: TrialSettings) -> list[tuple[int, str, Path]]:
    """(seed, site, folder) of every patient acquisition of a generated trial."""
    return [
        (seed, s, out / "patients" / f"P{seed}" / s) for seed in settings.patients for s in settings.sites
    ]


def settings_of(out: Path) -> TrialSettings:
    """The settings recorded in ``trial.json``."""
    data = json.loads((out / "trial.json").read_text(encoding="utf-8"))["settings"]
    return TrialSettings(
        patients=tuple(int(v) for v in data["patients"]),
        sites=tuple(str(v) for v in data["sites"]),
        matrix=int(data["matrix"]),
        voxel_scale=float(data["voxel_scale"]),
        timepoints_h=tuple(float(v) for v in data["timepoints_h"]),
        lesions=int(data["lesions"]),
    )
