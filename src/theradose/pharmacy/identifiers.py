"""Comparison keys for identifiers that must be unique: user names, MRNs, lot numbers, serials.

Two spellings that a person reads as the same identifier must collide: ``"LOT-1"`` and ``"lot-1"``,
``"ＬＯＴ－１"`` (full-width forms) and ``"LOT-1"``, ``"LOT\\u200b-1"`` (a zero-width space) and
``"LOT-1"``. The key is the Unicode *NFKC_Casefold* of the text [1]_ (``NFKC(casefold(NFKC(text)))``,
which is stable under repetition), with default-ignorable format characters (general category ``Cf``:
zero-width spaces and joiners, soft hyphen, byte-order mark, bidirectional marks) removed and runs of
white space collapsed to one space. Values are stored as entered; only their keys are compared.

References
----------
.. [1] Unicode Standard Annex #15, *Unicode Normalization Forms*, and the Unicode Standard, section 3.13
   "Default Caseless Matching" (D145, NFKC_Casefold), version 15.0, 2022.
"""

from __future__ import annotations

import re
import unicodedata

from theradose.errors import InputError

_SPACE = re.compile(r"\s+")


def invisible_characters(value: str) -> list[str]:
    """Code points of ``value`` that are invisible format characters (category ``Cf``), as ``U+XXXX``."""
    return [f"U+{ord(c):04X}" for c in value if unicodedata.category(c) == "Cf"]


def identifier_key(value: str) -> str:
    """The comparison key of an identifier (see the module docstring)."""
    text = unicodedata.normalize("NFKC", value)
    text = unicodedata.normalize("NFKC", text.casefold())
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return _SPACE.sub(" ", text).strip()


def check_identifier(value: str, name: str) -> str:
    """Return ``value`` stripped if it has visible text and no invisible format characters.

    Raises
    ------
    InputError
        Naming the field, the invisible code points and the fix.
    """
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{name} must be a non-empty text; got {value!r}: fill in {name}")
    hidden = invisible_characters(value)
    if hidden:
        raise InputError(
            f"{name} {value!r} contains invisible characters ({', '.join(hidden)}): "
            "type it again without them"
        )
    return value.strip()
