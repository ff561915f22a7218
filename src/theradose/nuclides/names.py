"""Nuclide names: parse the spellings users write and return the ICRP-107 canonical form.

Accepted spellings (case-insensitive): ``Lu-177``, ``Lu177``, ``177Lu``, ``177-Lu``, ``lu-177``,
metastable states as ``Tc-99m``, ``Tc99m``, ``99mTc``. The canonical form is ``Element-Mass[m|n]``,
e.g. ``Lu-177``, ``Tc-99m``, as used by ICRP Publication 107.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from theradose.errors import NuclideError

_SYMBOL_FIRST = re.compile(r"^([a-z]{1,2})[-_ ]?(\d{1,3})([mn]?)$")
_MASS_FIRST = re.compile(r"^(\d{1,3})([mn]?)[-_ ]?([a-z]{1,2})$")


def canonical_nuclide_name(name: str, known: Iterable[str]) -> str:
    """Return the canonical ICRP-107 name of ``name``.

    Parameters
    ----------
    name
        A nuclide as a user writes it, e.g. ``"177Lu"``.
    known
        The canonical names available (e.g. all ICRP-107 nuclides).

    Raises
    ------
    NuclideError
        If the spelling is not a nuclide name or the nuclide is not in ``known``; the message lists
        close matches.
    """
    known_set = set(known)
    text = str(name).strip().lower()
    match = _SYMBOL_FIRST.match(text)
    if match:
        symbol, mass, meta = match.groups()
    else:
        match = _MASS_FIRST.match(text)
        if match:
            mass, meta, symbol = match.groups()
        else:
            symbol = mass = meta = ""
    candidate = f"{symbol.capitalize()}-{int(mass)}{meta}" if symbol else ""
    if candidate in known_set:
        return candidate
    lowered = {k.lower(): k for k in known_set}
    probe = candidate.lower() if candidate else text
    close = difflib.get_close_matches(probe, list(lowered), n=4, cutoff=0.6)
    hint = f"; close matches: {', '.join(lowered[c] for c in close)}" if close else ""
    raise NuclideError(
        f"nuclide {name!r} is not in ICRP-107{hint}: write it as Element-Mass, e.g. 'Lu-177' or 'Tc-99m'"
    )
