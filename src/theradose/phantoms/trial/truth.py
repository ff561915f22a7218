"""Truth of a trial patient: masses, time-integrated activities and local-deposition absorbed doses.

Computed from the known activity (the parts' partial-volume fractions on the reference grid and the
analytic time integrals of :mod:`theradose.phantoms.trial.kinetics`) with the electron energy per decay
of ICRP Publication 107 (via :mod:`theradose.nuclides`) absorbed where it is emitted (MIRD Pamphlet 21,
Bolch et al. 2009, J Nucl Med 50:477):

    D = Ã · 3600 s/h · 10⁶ decays/(MBq·s) · Ē_e · 1.602·10⁻¹³ J/MeV / m.

No dose engine of :mod:`theradose.dosimetry` is used: the truth must not come from the code it scores.
The red marrow's truth is its mean dose, Ē_e times the time-integrated activity per gram of marrow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from theradose.phantoms.trial.anatomy import TrialPatient, Voxelised, trial_tissues
from theradose.phantoms.trial.kinetics import TrialKinetics, part_concentrations, part_tia_per_ml

#: Joules per MeV (CODATA 2018, exact) and seconds per hour.
_J_PER_MEV = 1.602176634e-13
_S_PER_H = 3600.0
_DECAYS_PER_MBQ_S = 1.0e6

#: Groups of segmentation regions scored as one (name → member regions).
REGION_GROUPS: Mapping[str, tuple[str, ...]] = {
    "kidneys": ("kidney_left", "kidney_right"),
    "parotids": ("parotid_left", "parotid_right"),
    "submandibulars": ("submandibular_left", "submandibular_right"),
    "salivary_glands": ("parotid_left", "parotid_right", "submandibular_left", "submandibular_right"),
    "lacrimal_glands": ("lacrimal_left", "lacrimal_right"),
    "spongiosa_l2_l4": ("spongiosa_L2", "spongiosa_L3", "spongiosa_L4"),
}


def local_dose_gy(tia_mbq_h: float, mass_g: float, electron_energy_mev: float) -> float:
    """Local-deposition absorbed dose (Gy) of ``tia_mbq_h`` in ``mass_g``."""
    return tia_mbq_h * _S_PER_H * _DECAYS_PER_MBQ_S * electron_energy_mev * _J_PER_MEV / (mass_g / 1000.0)


def patient_truth(
    patient: TrialPatient,
    kinetics: TrialKinetics,
    vox: Voxelised,
    *,
    electron_energy_mev: float,
    times_h: Sequence[float],
) -> dict[str, Any]:
    """Per region and group: mass (g), TIA (MBq·h), dose (Gy), activity at each time (MBq); red marrow."""
    tissues = trial_tissues()
    voxel_ml = vox.grid.voxel_ml
    volume = {name: float(arr.sum()) * voxel_ml for name, (_box, arr) in vox.fractions.items()}
    tia_ml = part_tia_per_ml(patient, kinetics)
    conc_t = [part_concentrations(patient, kinetics, t) for t in times_h]
    regions: dict[str, dict[str, Any]] = {}
    for region in patient.regions():
        parts = [p for p in patient.parts if p.region == region and p.name in volume]
        mass = sum(tissues[p.tissue].density_g_per_ml * volume[p.name] for p in parts)
        tia = sum(tia_ml[p.name] * volume[p.name] for p in parts)
        activity = [sum(c[p.name] * volume[p.name] for p in parts) / 1.0e6 for c in conc_t]
        regions[region] = {
            "mass_g": mass,
            "tia_mbq_h": tia,
            "activity_mbq_at_timepoints": activity,
            "parts": [p.name for p in parts],
        }
    for group, members in REGION_GROUPS.items():
        present = [m for m in members if m in regions]
        if not present:
            continue
        regions[group] = {
            "mass_g": sum(regions[m]["mass_g"] for m in present),
            "tia_mbq_h": sum(regions[m]["tia_mbq_h"] for m in present),
            "activity_mbq_at_timepoints": [
                sum(regions[m]["activity_mbq_at_timepoints"][i] for m in present) for i in range(len(times_h))
            ],
            "members": present,
        }
    for entry in regions.values():
        entry["dose_gy"] = (
            local_dose_gy(entry["tia_mbq_h"], entry["mass_g"], electron_energy_mev)
            if entry["mass_g"] > 0
            else 0.0
        )
    marrow_tia_per_g = kinetics.red_marrow_tia_per_g_mbq_h()
    red_marrow = {
        "dose_gy": local_dose_gy(marrow_tia_per_g, 1.0, electron_energy_mev),
        "tia_per_g_mbq_h": marrow_tia_per_g,
        "mass_g": kinetics.red_marrow_mass_g,
        "rmblr_true": kinetics.rmblr,
        "site_mass_g": dict(kinetics.marrow_site_mass_g),
        "l2_l4_mass_g": sum(kinetics.marrow_site_mass_g.get(v, 0.0) for v in ("L2", "L3", "L4")),
    }
    lesions = [
        {"name": les.name, "site": les.site, "diameter_mm": les.diameter_mm, "centre_mm": list(les.centre_mm)}
        for les in patient.lesions
    ]
    return {"regions": regions, "red_marrow": red_marrow, "lesions": lesions}
