"""The trial's sites: camera, acquisition, reconstruction, DICOM style (``data/phantoms/trial_sites.toml``).

The collimator-detector response of each site follows from its hole geometry as in ``spect.toml``:
FWHM(d) = √(R_g(d)² + R_i²), R_g = D (L_eff + d + B)/L_eff, L_eff = L − 2/μ_Pb (Cherry, Sorenson & Phelps,
Physics in Nuclear Medicine, 4th ed. 2012, eqs. 14-6 and 14-7), fitted by a straight line a + b·d over
50-350 mm; the sensitivity scales the reference MEGP's calibrated 5.67 cps/MBq by the geometric
efficiency ratio g ∝ (D/L_eff)² · D²/(D + t)² (eq. 14-11).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import numpy as np

from theradose.errors import DataError, InputError
from theradose.phantoms.projector import CollimatorResponse
from theradose.phantoms.spect import SpectSystem, default_system

DicomStyle = Literal["bqml", "counts", "rwvm"]


@dataclass(frozen=True)
class Site:
    """One site of the trial.

    Attributes
    ----------
    name : str
    style : {"bqml", "counts", "rwvm"}
        DICOM export style (Siemens-, GE-, Philips-like).
    manufacturer, description : str
    system : SpectSystem
        Camera and acquisition (scatter simulated or not).
    iterations, subsets : int
        OSEM settings (attenuation correction and resolution modelling on; scatter corrected when
        simulated).
    voxel_mm : float
        Reconstruction voxel size (isotropic, 128 matrix).
    """

    name: str
    style: DicomStyle
    manufacturer: str
    description: str
    system: SpectSystem
    iterations: int
    subsets: int
    voxel_mm: float


def collimator_line(
    hole_diameter_mm: float,
    hole_length_mm: float,
    *,
    mu_lead_per_mm: float,
    backface_mm: float,
    intrinsic_fwhm_mm: float,
) -> CollimatorResponse:
    """Straight-line fit a + b·d (d = 50-350 mm) of the system FWHM of a parallel-hole collimator."""
    l_eff = hole_length_mm - 2.0 / mu_lead_per_mm
    d = np.linspace(50.0, 350.0, 61)
    fwhm = np.sqrt((hole_diameter_mm * (l_eff + d + backface_mm) / l_eff) ** 2 + intrinsic_fwhm_mm**2)
    b, a = np.polyfit(d, fwhm, 1)
    return CollimatorResponse(float(a), float(b))


def geometric_efficiency(
    hole_diameter_mm: float, septa_mm: float, hole_length_mm: float, mu_lead_per_mm: float
) -> float:
    """Relative geometric efficiency (D/L_eff)² · D²/(D + t)² (the constant K² cancels in ratios)."""
    l_eff = hole_length_mm - 2.0 / mu_lead_per_mm
    return (hole_diameter_mm / l_eff) ** 2 * hole_diameter_mm**2 / (hole_diameter_mm + septa_mm) ** 2


@lru_cache(maxsize=1)
def _raw() -> dict[str, Any]:
    try:
        return tomllib.loads(
            resources.files("theradose").joinpath("data", "phantoms", "trial_sites.toml").read_text("utf-8")
        )
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DataError(f"trial_sites.toml is missing or malformed ({exc}): reinstall theradose") from exc


def trial_sites() -> dict[str, Site]:
    """Every site of ``trial_sites.toml``, in file order."""
    raw = _raw()
    try:
        mu = float(raw["mu_lead_per_mm"])
        ref = raw["reference_hole"]
        ref_g = geometric_efficiency(
            float(ref["diameter_mm"]), float(ref["septa_mm"]), float(ref["length_mm"]), mu
        )
        base = default_system()
        out: dict[str, Site] = {}
        for name, e in raw["site"].items():
            hole = e["hole"]
            g = geometric_efficiency(
                float(hole["diameter_mm"]), float(hole["septa_mm"]), float(hole["length_mm"]), mu
            )
            collimator = collimator_line(
                float(hole["diameter_mm"]),
                float(hole["length_mm"]),
                mu_lead_per_mm=mu,
                backface_mm=float(raw["backface_mm"]),
                intrinsic_fwhm_mm=float(raw["intrinsic_fwhm_mm"]),
            )
            system = base.with_(
                collimator=collimator,
                sensitivity_cps_per_mbq=float(raw["reference_sensitivity_cps_per_mbq"]) * g / ref_g,
                n_views=int(e["n_views"]),
                n_heads=int(e["n_heads"]),
                radius_mm=float(e["radius_mm"]),
                time_per_view_s=float(e["time_per_view_s"]),
                scatter=str(e["scatter"]),
            )
            style = str(e["style"])
            if style not in ("bqml", "counts", "rwvm"):
                raise DataError(f"trial_sites.toml: site {name} has style {style!r}")
            out[str(name)] = Site(
                name=str(name),
                style="bqml" if style == "bqml" else "counts" if style == "counts" else "rwvm",
                manufacturer=str(e["manufacturer"]),
                description=str(e["description"]),
                system=system,
                iterations=int(e["iterations"]),
                subsets=int(e["subsets"]),
                voxel_mm=float(e["voxel_mm"]),
            )
        return out
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"trial_sites.toml is malformed ({exc}): reinstall theradose") from exc


def get_site(name: str) -> Site:
    """The site called ``name``."""
    sites = trial_sites()
    if name not in sites:
        raise InputError(f"site {name!r} is unknown; choose one of {', '.join(sites)}")
    return sites[name]


def describe(site: Site) -> Mapping[str, object]:
    """JSON-ready description of a site (for the truth file)."""
    s = site.system
    return {
        "name": site.name,
        "style": site.style,
        "manufacturer": site.manufacturer,
        "description": site.description,
        "collimator_fwhm_mm": {
            "intercept_mm": s.collimator.fwhm_intercept_mm,
            "slope": s.collimator.fwhm_slope,
        },
        "fwhm_at_orbit_radius_mm": float(s.collimator.fwhm_mm(s.radius_mm)),
        "sensitivity_cps_per_mbq": s.sensitivity_cps_per_mbq,
        "n_views": s.n_views,
        "n_heads": s.n_heads,
        "radius_mm": s.radius_mm,
        "time_per_view_s": s.time_per_view_s,
        "acquisition_duration_s": s.acquisition_duration_s,
        "scatter": s.scatter,
        "iterations": site.iterations,
        "subsets": site.subsets,
        "voxel_mm": site.voxel_mm,
    }


def acquisition_duration_s(site: Site) -> float:
    """Scan time of one acquisition (s)."""
    return float(site.system.n_views * site.system.time_per_view_s / site.system.n_heads)


def fwhm_at_centre_mm(site: Site) -> float:
    """Collimator FWHM at the orbit radius (mm)."""
    return float(site.system.collimator.fwhm_mm(site.system.radius_mm))
