"""Patient pseudonyms.

Clinical records refer to patients only by a random pseudonym; the identity (name, MRN, birth date) is
kept in a separate mapping that only authorised roles may read (pseudonymisation in the sense of GDPR
Art. 4(5)). A pseudonym carries 50 random bits from the operating system's CSPRNG.
"""

from __future__ import annotations

import re
import secrets

from theradose.errors import InputError

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32, no I L O U
_PATTERN = re.compile(r"^PT-[0-9A-HJKMNP-TV-Z]{10}$")


def new_pseudonym() -> str:
    """A new random pseudonym ``PT-XXXXXXXXXX`` (10 Crockford base32 characters)."""
    return "PT-" + "".join(secrets.choice(_ALPHABET) for _ in range(10))


def check_pseudonym(value: str) -> str:
    """Return ``value`` if it is a well-formed pseudonym, else raise :class:`InputError`."""
    if not isinstance(value, str) or not _PATTERN.match(value):
        raise InputError(f"pseudonym must look like PT-XXXXXXXXXX (Crockford base32); got {value!r}")
    return value
