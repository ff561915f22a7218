"""The tissue registry: mass density and linear-quadratic parameters of each tissue, from one table.

``theradose/data/tissues.toml`` (sources in the README beside it) is the single source of a tissue's
density (used by the phantoms, by the pipeline where no CT is given and by the dose engines' media) and of
its α/β ratio and repair half-time (used for every BED: the pipeline, the planner, the reports). Organs
name their tissue in the organ registry (:mod:`theradose.organs`); protocols refer to tissues by name.

Public API::

    from theradose.tissues import Tissue, get_tissue, tissue_names

    get_tissue("kidney").alpha_beta_gy     # 2.6
    get_tissue("soft_tissue").density_g_per_ml   # 1.03
    get_tissue("bone marrow")              # InputError naming the choices
"""

from __future__ import annotations

import difflib
import functools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from theradose.errors import DataError, InputError

#: File of the registry inside the ``theradose.data`` package.
TISSUE_DATA_FILE = "tissues.toml"
SCHEMA_VERSION = 1

#: Spellings read as a canonical tissue name (after lower-casing, spaces and hyphens as underscores).
_SPELLINGS: Mapping[str, str] = {
    "tumor": "tumour",
    "kidneys": "kidney",
    "bone_marrow": "red_marrow",
    "marrow": "red_marrow",
    "salivary": "salivary_glands",
    "salivary_gland": "salivary_glands",
    "lacrimal_gland": "lacrimal_glands",
    "soft": "soft_tissue",
    "bone": "cortical_bone",
}


@dataclass(frozen=True)
class Tissue:
    """One tissue of the registry.

    Attributes
    ----------
    name : str
        Canonical name.
    title : str
    density_g_per_ml : float
        Mass density (g/mL).
    density_source : str
    alpha_beta_gy : float or None
        α/β ratio of the linear-quadratic model (Gy); None where no value is established.
    repair_half_time_h : float or None
        Half-time of sublethal-damage repair (h); None with ``alpha_beta_gy``.
    radiobiology_source : str
        Citation of the LQ parameters ("" without them).
    """

    name: str
    title: str
    density_g_per_ml: float
    density_source: str
    alpha_beta_gy: float | None = None
    repair_half_time_h: float | None = None
    radiobiology_source: str = ""

    @property
    def has_radiobiology(self) -> bool:
        """Whether BED can be computed for this tissue."""
        return self.alpha_beta_gy is not None and self.repair_half_time_h is not None


def _positive(entry: Mapping[str, Any], key: str, name: str) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{TISSUE_DATA_FILE}: {name}.{key} must be a number: reinstall theradose")
    if not math.isfinite(value) or value <= 0:
        raise DataError(f"{TISSUE_DATA_FILE}: {name}.{key} must be a positive number: reinstall theradose")
    return float(value)


def _tissue(name: str, entry: Any) -> Tissue:
    if not isinstance(entry, dict):
        raise DataError(f"{TISSUE_DATA_FILE}: {name} must be a table: reinstall theradose")
    lq_keys = ("alpha_beta_gy", "repair_half_time_h", "radiobiology_source")
    present = [k for k in lq_keys if k in entry]
    if present and len(present) != len(lq_keys):
        raise DataError(
            f"{TISSUE_DATA_FILE}: {name} gives {', '.join(present)} but needs all of {', '.join(lq_keys)}"
        )
    if not str(entry.get("density_source", "")).strip():
        raise DataError(f"{TISSUE_DATA_FILE}: {name}.density_source must cite the density")
    return Tissue(
        name=name,
        title=str(entry.get("title", name)),
        density_g_per_ml=_positive(entry, "density_g_per_ml", name),
        density_source=str(entry["density_source"]),
        alpha_beta_gy=_positive(entry, "alpha_beta_gy", name) if present else None,
        repair_half_time_h=_positive(entry, "repair_half_time_h", name) if present else None,
        radiobiology_source=str(entry.get("radiobiology_source", "")),
    )


@functools.lru_cache(maxsize=1)
def _table() -> dict[str, Tissue]:
    try:
        text = resources.files("theradose.data").joinpath(TISSUE_DATA_FILE).read_text(encoding="utf-8")
        raw = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DataError(f"cannot read {TISSUE_DATA_FILE} ({exc}): reinstall theradose") from None
    if raw.pop("schema_version", None) != SCHEMA_VERSION:
        raise DataError(f"{TISSUE_DATA_FILE}: schema_version must be {SCHEMA_VERSION}: reinstall theradose")
    return {name: _tissue(name, entry) for name, entry in raw.items()}


def tissues() -> tuple[Tissue, ...]:
    """Every tissue of the registry, in file order."""
    return tuple(_table().values())


def tissue_names() -> tuple[str, ...]:
    """Canonical tissue names, in file order."""
    return tuple(_table())


def get_tissue(name: str) -> Tissue:
    """The tissue named ``name`` (case-insensitive; spaces and hyphens read as underscores; a few common
    spellings such as ``tumor`` and ``bone_marrow`` accepted).

    Raises
    ------
    InputError
        Unknown tissue; the message lists the tissues.
    """
    key = str(name).strip().lower().replace(" ", "_").replace("-", "_")
    key = _SPELLINGS.get(key, key)
    table = _table()
    if key in table:
        return table[key]
    close = difflib.get_close_matches(key, list(table), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise InputError(f"unknown tissue {name!r}{hint}: choose one of {', '.join(table)}")


def density_g_per_ml(name: str) -> float:
    """Mass density (g/mL) of a tissue of the registry."""
    return get_tissue(name).density_g_per_ml


__all__ = ["Tissue", "density_g_per_ml", "get_tissue", "tissue_names", "tissues"]
