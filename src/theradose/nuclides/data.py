"""ICRP-107 nuclear decay data for one nuclide.

Half-lives, emission lines and beta spectra come from the PyPI package ``icrp107-database`` (the ICRP-107
``.RAD`` and ``.BET`` files as JSON); decay chains (daughters and branching fractions) from the PyPI package
``radioactivedecay`` (its ``icrp107_ame2020_nubase2020`` data set, whose branching fractions are those of
ICRP-107). ``radioactivedecay`` takes seconds to import, so it is loaded only when progeny are asked for.

References
----------
ICRP, 2008. Nuclear Decay Data for Dosimetric Calculations. ICRP Publication 107. Ann. ICRP 38(3).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from theradose.errors import DataError
from theradose.nuclides.names import canonical_nuclide_name
from theradose.units import days_to_hours, mev_to_kev, minutes_to_hours, seconds_to_hours

ElectronKind = Literal["conversion", "auger"]
PhotonKind = Literal["gamma", "x-ray", "annihilation"]

_HOURS_PER_YEAR = days_to_hours(365.25)
#: ICRP-107 time units (s, m, h, d, y; ms and us for very short-lived nuclides) in hours.
_HOURS_PER_UNIT = {
    "us": seconds_to_hours(1e-6),
    "ms": seconds_to_hours(1e-3),
    "s": seconds_to_hours(1.0),
    "m": minutes_to_hours(1.0),
    "h": 1.0,
    "d": days_to_hours(1.0),
    "y": _HOURS_PER_YEAR,
}


@dataclass(frozen=True)
class PhotonLine:
    """One photon emission: energy in keV and yield per nuclear transformation."""

    energy_kev: float
    yield_per_decay: float
    kind: PhotonKind = "gamma"


@dataclass(frozen=True)
class ElectronLine:
    """One discrete electron emission (internal conversion or Auger)."""

    energy_kev: float
    yield_per_decay: float
    kind: ElectronKind = "conversion"


@dataclass(frozen=True)
class Nuclide:
    """Decay data of one nuclide (ICRP-107). Energies are mean energies per nuclear transformation.

    Attributes
    ----------
    name
        Canonical name, e.g. ``"Lu-177"``.
    half_life_h
        Physical half-life in hours.
    beta_energy_mev_per_decay
        Mean kinetic energy of β⁻ and β⁺ particles per decay (MeV).
    ce_energy_mev_per_decay, auger_energy_mev_per_decay
        Internal-conversion and Auger electron energy per decay (MeV).
    photon_energy_mev_per_decay
        γ, X-ray and annihilation photon energy per decay (MeV).
    alpha_energy_mev_per_decay, alpha_recoil_energy_mev_per_decay
        α-particle and recoil-nucleus energy per decay (MeV).
    photon_lines, electron_lines
        Discrete emissions.
    progeny
        Direct daughters and branching fractions; stable daughters included.
    """

    name: str
    half_life_h: float
    beta_energy_mev_per_decay: float
    ce_energy_mev_per_decay: float
    auger_energy_mev_per_decay: float
    photon_energy_mev_per_decay: float
    alpha_energy_mev_per_decay: float
    alpha_recoil_energy_mev_per_decay: float
    photon_lines: tuple[PhotonLine, ...]
    electron_lines: tuple[ElectronLine, ...]
    _beta_spectrum: tuple[tuple[float, float], ...] = field(repr=False, default=())
    beta_yield_per_decay: float = 0.0

    @property
    def decay_constant_per_h(self) -> float:
        """Physical decay constant λ = ln 2 / T½ in 1/h."""
        return float(np.log(2.0) / self.half_life_h)

    @property
    def electron_energy_mev_per_decay(self) -> float:
        """β + conversion + Auger electron energy per decay (MeV)."""
        return self.beta_energy_mev_per_decay + self.ce_energy_mev_per_decay + self.auger_energy_mev_per_decay

    @property
    def total_energy_mev_per_decay(self) -> float:
        """All emitted energy per decay (electrons, photons, alphas and recoil), in MeV."""
        return (
            self.electron_energy_mev_per_decay
            + self.photon_energy_mev_per_decay
            + self.alpha_energy_mev_per_decay
            + self.alpha_recoil_energy_mev_per_decay
        )

    @property
    def progeny(self) -> tuple[tuple[str, float], ...]:
        """Direct daughters and branching fractions (ICRP-107, via ``radioactivedecay``)."""
        return _progeny(self.name)

    @property
    def is_stable(self) -> bool:
        """True for a stable nuclide (infinite half-life)."""
        return bool(np.isinf(self.half_life_h))

    def beta_spectrum(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """β spectrum: energies (MeV) and probability density per MeV per decay.

        The density integrates (trapezoid rule) to the total β yield per decay, so that
        ``∫ E·p(E) dE`` is the mean β energy per decay. Empty arrays for nuclides without β emission.
        """
        if not self._beta_spectrum:
            return np.zeros(0), np.zeros(0)
        table = np.asarray(self._beta_spectrum, dtype=np.float64)
        energy_mev, density = table[:, 0], table[:, 1]
        integral = float(np.trapezoid(density, energy_mev))
        if integral > 0.0 and self.beta_yield_per_decay > 0.0:
            density = density * (self.beta_yield_per_decay / integral)
        return energy_mev, density

    def photon_lines_above(self, energy_kev: float) -> tuple[PhotonLine, ...]:
        """Photon lines with energy strictly above ``energy_kev``."""
        return tuple(line for line in self.photon_lines if line.energy_kev > energy_kev)


def _icrp107_dir() -> Path:
    try:
        root = resources.files("icrp107_database") / "icrp107"
    except ModuleNotFoundError as exc:  # pragma: no cover - dependency missing is an install error
        raise DataError("package icrp107-database is not installed: pip install icrp107-database") from exc
    return Path(str(root))


@cache
def available_nuclides() -> tuple[str, ...]:
    """Canonical names of all nuclides with ICRP-107 emission data."""
    return tuple(sorted(p.stem for p in _icrp107_dir().glob("*.json")))


def _half_life_h(raw: dict[str, object]) -> float:
    """Half-life in hours from the ICRP-107 value and its time unit."""
    name = str(raw["name"])
    value = float(str(raw["half_life"]))
    unit = str(raw["time_unit"])
    if unit not in _HOURS_PER_UNIT:
        raise DataError(f"ICRP-107 entry {name} has unknown time unit {unit!r}")
    return value * _HOURS_PER_UNIT[unit]


@cache
def _progeny(name: str) -> tuple[tuple[str, float], ...]:
    import radioactivedecay as rd

    try:
        nuclide = rd.Nuclide(name)
    except Exception:
        return ()
    return tuple(
        (str(d), float(b)) for d, b in zip(nuclide.progeny(), nuclide.branching_fractions(), strict=True)
    )


def _mean_energy_mev(lines: list[list[float]]) -> float:
    return float(sum(energy * yld for energy, yld in lines))


@cache
def _load(name: str) -> Nuclide:
    path = _icrp107_dir() / f"{name}.json"
    try:
        raw = json.loads(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read ICRP-107 data file {path}: {exc}") from exc
    emissions: dict[str, list[list[float]]] = raw["emissions"]

    def lines(kind: str) -> list[list[float]]:
        return emissions.get(kind) or []

    photon_kinds: tuple[tuple[str, PhotonKind], ...] = (
        ("gamma", "gamma"),
        ("X", "x-ray"),
        ("annihilation", "annihilation"),
    )
    photons = [PhotonLine(mev_to_kev(e), y, kind) for key, kind in photon_kinds for e, y in lines(key)]
    photons.sort(key=lambda line: line.energy_kev)
    electron_kinds: tuple[tuple[str, ElectronKind], ...] = (("IE", "conversion"), ("auger", "auger"))
    electrons = [ElectronLine(mev_to_kev(e), y, kind) for key, kind in electron_kinds for e, y in lines(key)]
    electrons.sort(key=lambda line: line.energy_kev)
    beta_lines = lines("beta-") + lines("beta+")
    return Nuclide(
        name=name,
        half_life_h=_half_life_h(raw),
        beta_energy_mev_per_decay=_mean_energy_mev(beta_lines),
        ce_energy_mev_per_decay=_mean_energy_mev(lines("IE")),
        auger_energy_mev_per_decay=_mean_energy_mev(lines("auger")),
        photon_energy_mev_per_decay=_mean_energy_mev(lines("gamma") + lines("X") + lines("annihilation")),
        alpha_energy_mev_per_decay=_mean_energy_mev(lines("alpha")),
        alpha_recoil_energy_mev_per_decay=_mean_energy_mev(lines("alpha recoil")),
        photon_lines=tuple(photons),
        electron_lines=tuple(electrons),
        _beta_spectrum=tuple((float(e), float(p)) for e, p in lines("b-spectra")),
        beta_yield_per_decay=float(sum(y for _, y in beta_lines)),
    )


def get_nuclide(name: str | Nuclide) -> Nuclide:
    """Decay data of a nuclide by name (``Lu-177``, ``Lu177``, ``177Lu``; case-insensitive).

    Raises
    ------
    NuclideError
        For an unknown name, with close matches in the message.

    Examples
    --------
    >>> round(get_nuclide("177Lu").half_life_h, 3)
    159.528
    """
    if isinstance(name, Nuclide):
        return name
    return _load(canonical_nuclide_name(name, available_nuclides()))
