"""Reference S values: mass scaling of self-dose and user tables for cross-dose.

Mass scaling (MIRD Pamphlet 11, Snyder et al. 1975; as implemented in OLINDA/EXM, Stabin, Sparks & Crowe
2005, J Nucl Med 46:1023; Petoussi-Henss et al. 2007, Phys Med Biol 52:2283): when a patient's organ mass
``m`` differs from the phantom's ``m_ref``, the self-dose S value is rescaled per radiation type,

.. math::
    S_e(m) = S_e(m_{ref}) \\frac{m_{ref}}{m}, \\qquad
    S_\\gamma(m) = S_\\gamma(m_{ref}) \\left(\\frac{m_{ref}}{m}\\right)^{2/3},

because non-penetrating energy is absorbed locally (absorbed fraction constant) while the photon
absorbed fraction grows roughly as the mean chord, ``m^{1/3}``.

User S-value tables are CSV files with a header ``source,target,s_mgy_per_mbq_s`` (one row per pair;
``S(target ← source)`` in mGy/(MBq·s)), e.g. exported from OLINDA/EXM, IDAC-Dose or OpenDose.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from theradose.errors import InputError

#: Exponent of the mass ratio for photon self-dose scaling (MIRD Pamphlet 11; OLINDA/EXM).
PHOTON_MASS_SCALING_EXPONENT = 2.0 / 3.0

S_TABLE_COLUMNS = ("source", "target", "s_mgy_per_mbq_s")


def scale_self_s_value(
    *,
    electron_s_mgy_per_mbq_s: float,
    photon_s_mgy_per_mbq_s: float,
    reference_mass_g: float,
    mass_g: float,
) -> float:
    """Rescale a reference-phantom self-dose S value to the patient's organ mass.

    Parameters
    ----------
    electron_s_mgy_per_mbq_s, photon_s_mgy_per_mbq_s : float
        Non-penetrating (electrons, alphas) and penetrating (photons) parts of the reference self-dose
        S value, mGy/(MBq·s).
    reference_mass_g, mass_g : float
        Phantom and patient organ mass, g.

    Returns
    -------
    float
        ``S_e·(m_ref/m) + S_γ·(m_ref/m)^(2/3)``, mGy/(MBq·s) (MIRD Pamphlet 11; OLINDA/EXM).
    """
    for name, value in (("reference_mass_g", reference_mass_g), ("mass_g", mass_g)):
        if not (value > 0.0 and math.isfinite(value)):
            raise InputError(f"{name} must be a positive finite mass in g; got {value!r}")
    for name, value in (
        ("electron_s_mgy_per_mbq_s", electron_s_mgy_per_mbq_s),
        ("photon_s_mgy_per_mbq_s", photon_s_mgy_per_mbq_s),
    ):
        if not (value >= 0.0 and math.isfinite(value)):
            raise InputError(f"{name} must be a non-negative finite S value; got {value!r}")
    ratio = reference_mass_g / mass_g
    return float(
        electron_s_mgy_per_mbq_s * ratio + photon_s_mgy_per_mbq_s * ratio**PHOTON_MASS_SCALING_EXPONENT
    )


@dataclass(frozen=True)
class SValueTable:
    """S values ``S(target ← source)`` in mGy/(MBq·s), keyed by (source, target) region names."""

    values: Mapping[tuple[str, str], float] = field(default_factory=dict)
    origin: str = ""

    def get(self, *, source: str, target: str) -> float | None:
        """S(target ← source) or ``None`` when the pair is not in the table."""
        return self.values.get((source, target))

    def sources_for(self, target: str) -> list[str]:
        """Source regions with an S value to ``target``, in table order."""
        return [s for (s, t) in self.values if t == target]


def load_s_value_table(path: str | Path) -> SValueTable:
    """Read a user S-value table from CSV.

    Parameters
    ----------
    path : str or Path
        CSV with header ``source,target,s_mgy_per_mbq_s``; blank lines and lines starting with ``#`` are
        skipped.

    Returns
    -------
    SValueTable

    Raises
    ------
    InputError
        Missing file, missing columns, non-numeric or negative S values, duplicated pairs; the message
        names the file, the line and the fix.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"S-value table {str(file)!r} does not exist: give the path of a CSV file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"S-value table {str(file)!r} cannot be read ({exc}): give a UTF-8 CSV") from None
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise InputError(f"S-value table {str(file)!r} is empty: add a header {','.join(S_TABLE_COLUMNS)}")
    reader = csv.DictReader(lines)
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in S_TABLE_COLUMNS if c not in header]
    if missing:
        raise InputError(
            f"S-value table {str(file)!r} lacks column(s) {', '.join(missing)}; header is {header}: "
            f"use the header {','.join(S_TABLE_COLUMNS)}"
        )
    values: dict[tuple[str, str], float] = {}
    for number, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if isinstance(v, str)}
        source, target, text_value = (
            row.get("source", ""),
            row.get("target", ""),
            row.get("s_mgy_per_mbq_s", ""),
        )
        if not source or not target:
            raise InputError(f"S-value table {str(file)!r} row {number}: source and target must be named")
        try:
            value = float(text_value)
        except ValueError:
            raise InputError(
                f"S-value table {str(file)!r} row {number}: s_mgy_per_mbq_s={text_value!r} is not a number"
            ) from None
        if not (value >= 0.0 and math.isfinite(value)):
            raise InputError(
                f"S-value table {str(file)!r} row {number}: s_mgy_per_mbq_s={text_value!r} must be "
                "a non-negative finite number"
            )
        if (source, target) in values:
            raise InputError(
                f"S-value table {str(file)!r} row {number}: pair {source}->{target} appears twice: "
                "keep one row per pair"
            )
        values[(source, target)] = value
    return SValueTable(values=values, origin=str(file))
