"""Tissue parameters (α/β, repair half-time) for BED, from the tissue registry and overridable.

The values come from :mod:`theradose.tissues` (``data/tissues.toml``), the one source of every tissue's
parameters; this module adds the user overrides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from theradose.errors import InputError


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


def tissue_names() -> tuple[str, ...]:
    """Names of the tissues of the tissue registry that have default LQ parameters."""
    from theradose.tissues import tissues

    return tuple(t.name for t in tissues() if t.has_radiobiology)


def tissue_parameters(
    name: str, *, alpha_beta_gy: float | None = None, repair_half_time_h: float | None = None
) -> TissueParameters:
    """Default LQ parameters of a tissue, with optional overrides.

    Parameters
    ----------
    name : str
        A tissue of the registry (:func:`theradose.tissues.get_tissue`), e.g. ``kidney``,
        ``red_marrow``, ``salivary_glands``, ``liver`` or ``tumour``.
    alpha_beta_gy, repair_half_time_h : float, optional
        Values replacing the defaults; the returned ``source`` then says which were overridden.

    Returns
    -------
    TissueParameters
    """
    from theradose.tissues import get_tissue

    tissue = get_tissue(name)
    if not tissue.has_radiobiology and (alpha_beta_gy is None or repair_half_time_h is None):
        raise InputError(
            f"tissue {tissue.name!r} has no established alpha/beta and repair half-time: give both "
            f"alpha_beta_gy and repair_half_time_h, or use one of {', '.join(tissue_names())}"
        )
    overridden = []
    ab, rep = tissue.alpha_beta_gy or math.nan, tissue.repair_half_time_h or math.nan
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
    defaults = tissue.radiobiology_source or "none"
    source = defaults if not overridden else f"user ({', '.join(overridden)}); defaults: {defaults}"
    return TissueParameters(alpha_beta_gy=ab, repair_half_time_h=rep, source=source)
