"""Tissue parameters (α/β, repair half-time) for BED, shipped as cited data and overridable."""

from __future__ import annotations

import functools
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from theradose.errors import DataError, InputError

#: Shipped tissue table (source and licence in the README.md beside it).
TISSUE_DATA_PATH = Path(__file__).resolve().parent.parent / "data" / "radiobiology" / "tissues.toml"
TISSUE_DATA_FILE = TISSUE_DATA_PATH.name


@dataclass(frozen=True)
class TissueParameters:
    """Linear-quadratic parameters of a tissue.

    Attributes
    ----------
    alpha_beta_gy : float
        α/β ratio, Gy.
    repair_half_time_h : float
        Half-time of sublethal-damage repair, h.
    source : str
        Citation of the values (or ``"user"`` for overridden values).
    """

    alpha_beta_gy: float
    repair_half_time_h: float
    source: str


@functools.lru_cache(maxsize=1)
def _table() -> dict[str, TissueParameters]:
    try:
        raw = tomllib.loads(TISSUE_DATA_PATH.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DataError(f"cannot read {TISSUE_DATA_FILE} ({exc}): reinstall theradose") from None
    table: dict[str, TissueParameters] = {}
    for name, entry in raw.items():
        try:
            table[name] = TissueParameters(
                alpha_beta_gy=float(entry["alpha_beta_gy"]),
                repair_half_time_h=float(entry["repair_half_time_h"]),
                source=str(entry["source"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                f"{TISSUE_DATA_FILE} entry {name!r} is malformed ({exc}): reinstall theradose"
            ) from None
    return table


def tissue_names() -> tuple[str, ...]:
    """Names of the tissues with default parameters."""
    return tuple(_table())


def tissue_parameters(
    name: str, *, alpha_beta_gy: float | None = None, repair_half_time_h: float | None = None
) -> TissueParameters:
    """Default LQ parameters of a tissue, with optional overrides.

    Parameters
    ----------
    name : str
        ``kidney``, ``red_marrow``, ``salivary_glands``, ``liver`` or ``tumour`` (case-insensitive;
        spaces and hyphens read as underscores; ``tumor`` accepted).
    alpha_beta_gy, repair_half_time_h : float, optional
        Values replacing the defaults; the returned ``source`` then says which were overridden.

    Returns
    -------
    TissueParameters
    """
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    key = {
        "tumor": "tumour",
        "kidneys": "kidney",
        "bone_marrow": "red_marrow",
        "salivary": "salivary_glands",
    }.get(key, key)
    table = _table()
    if key not in table:
        raise InputError(f"unknown tissue {name!r}: choose one of {', '.join(table)} or give the parameters")
    params = table[key]
    overridden = []
    ab, rep = params.alpha_beta_gy, params.repair_half_time_h
    if alpha_beta_gy is not None:
        if not (math.isfinite(alpha_beta_gy) and alpha_beta_gy > 0.0):
            raise InputError(f"alpha_beta_gy must be a positive number; got {alpha_beta_gy!r}")
        ab = float(alpha_beta_gy)
        overridden.append("alpha_beta_gy")
    if repair_half_time_h is not None:
        if not (math.isfinite(repair_half_time_h) and repair_half_time_h > 0.0):
            raise InputError(f"repair_half_time_h must be a positive number; got {repair_half_time_h!r}")
        rep = float(repair_half_time_h)
        overridden.append("repair_half_time_h")
    source = params.source if not overridden else f"user ({', '.join(overridden)}); defaults: {params.source}"
    return TissueParameters(alpha_beta_gy=ab, repair_half_time_h=rep, source=source)
