"""Decay-in-storage of radioactive waste (US 10 CFR 35.92) and the 177mLu of carrier-added 177Lu.

Waste whose nuclides all have a physical half-life of at most 120 days may be held in a sealed
container until a survey at the container's surface (survey meter on its most sensitive scale, no
shielding) cannot distinguish it from background, then released with its radiation labels removed
(10 CFR 35.92(a); records: 35.2092). 177Lu made by neutron capture on enriched 176Lu ("carrier-added")
contains metastable 177mLu (physical half-life 160.4 d; Balzer et al., EJNMMI Radiopharm Chem 8:36,
2023, found it in Lutathera and in-house preparations within the Ph. Eur. limit), so waste from such
batches is not eligible for decay-in-storage under 35.92 and must be managed otherwise (e.g. a license
condition or a waste broker). Half-lives come from ICRP Publication 107 (:mod:`theradose.pharmacy.decay`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

from theradose.errors import InputError
from theradose.pharmacy.decay import canonical_nuclide, half_life_h
from theradose.units import hours_to_days

#: The metastable impurity of carrier-added 177Lu.
LU177M = "Lu-177m"


@dataclass(frozen=True)
class StorageRule:
    """The decay-in-storage limit of a jurisdiction."""

    max_half_life_d: float
    citation: str


@dataclass(frozen=True)
class Eligibility:
    """Whether a nuclide mix may be held for decay-in-storage; ``blocking``: the nuclides that may not."""

    eligible: bool
    blocking: tuple[str, ...]
    message: str


def load_storage_rule(jurisdiction: str = "us_nrc") -> StorageRule:
    """The ``[decay_in_storage]`` section of ``data/regulatory/<jurisdiction>.toml``."""
    try:
        text = (resources.files("theradose.data") / "regulatory" / f"{jurisdiction}.toml").read_text(
            encoding="utf-8"
        )
    except FileNotFoundError as exc:
        raise InputError(f"jurisdiction {jurisdiction!r} has no rules file: use us_nrc") from exc
    table = tomllib.loads(text)["decay_in_storage"]
    return StorageRule(float(table["max_half_life_d"]), str(table["citation"]))


def nuclide_mix(nuclides: Iterable[str], *, carrier_added_lu177: bool) -> tuple[str, ...]:
    """The canonical nuclides of a container, with 177mLu added when it holds carrier-added 177Lu."""
    mix = {canonical_nuclide(n) for n in nuclides}
    if carrier_added_lu177 and "Lu-177" in mix:
        mix.add(LU177M)
    return tuple(sorted(mix))


def decay_in_storage_eligibility(nuclides: Iterable[str], rule: StorageRule | None = None) -> Eligibility:
    """Whether every nuclide of the mix has a half-life within the rule's limit."""
    rule = rule or load_storage_rule()
    blocking = []
    for nuclide in nuclides:
        days = hours_to_days(half_life_h(nuclide))
        if days > rule.max_half_life_d:
            blocking.append(f"{nuclide} (T1/2 {days:.1f} d)")
    if blocking:
        return Eligibility(
            False,
            tuple(blocking),
            f"not eligible for decay-in-storage: {', '.join(blocking)} exceeds {rule.max_half_life_d:g} d "
            f"({rule.citation}); manage as long-lived waste",
        )
    return Eligibility(True, (), f"eligible for decay-in-storage ({rule.citation})")


@dataclass(frozen=True)
class ReleaseSurvey:
    """The survey before disposal: readings at the container surface and of the background (µSv/h)."""

    surface_usv_h: float
    background_usv_h: float
    instrument: str

    def __post_init__(self) -> None:
        for name in ("surface_usv_h", "background_usv_h"):
            value = getattr(self, name)
            if not value >= 0:
                raise InputError(f"{name} must be >= 0 µSv/h; got {value!r}")
        if not self.instrument.strip():
            raise InputError("instrument must name the survey meter used (10 CFR 35.2092)")

    @property
    def indistinguishable_from_background(self) -> bool:
        """True when the surface reading is not above the background reading (10 CFR 35.92(a)(1))."""
        return self.surface_usv_h <= self.background_usv_h
