"""The keys that seal the audit chain, e-signatures, login tokens and checkpoints, kept outside the database.

An operator gives the service one or more *master keys*, each with a key id, either

* in a **key file** (``Settings.key_file``, ``$THERADOSE_KEY_FILE``): one key per line,
  ``<key id> <hex, at least 32 bytes>``, ``#`` comments; the **last** line is the active key, earlier
  lines are retired keys kept so that what they sealed still verifies (rotation: append a line with
  ``theradose audit keygen --key-file PATH``). The file must not be readable or writable by group or
  others (``chmod 600``), or it is refused; or
* in an **environment variable** (``Settings.secret_key``, ``$THERADOSE_SECRET_KEY``): one key as text
  (at least 16 characters); its key id is ``env-`` and the first 12 hex digits of a keyed fingerprint.

Each use gets its own sub-key, ``HMAC-SHA-256(master, "theradose/" + purpose)`` (domain separation in the
manner of HKDF-Expand, RFC 5869 §2.3, with one output block), so a value sealed for one purpose can
never be replayed as another. Every sealed value stores the id of the key that sealed it, so retired
keys still verify old values and a value sealed with a key the ring does not hold is reported, never
accepted.

References
----------
1. RFC 2104, *HMAC: Keyed-Hashing for Message Authentication*, 1997.
2. RFC 5869, *HMAC-based Extract-and-Expand Key Derivation Function (HKDF)*, 2010.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from theradose.errors import InputError

#: Purposes of the derived sub-keys.
Purpose = Literal[
    "audit-chain", "e-signature", "session-token", "state-digest", "checkpoint", "csrf", "foreign-patient"
]

#: Smallest master key accepted from a key file, in bytes (256 bits, the HMAC-SHA-256 block output).
MIN_FILE_KEY_BYTES = 32
#: Smallest key accepted from the environment, in characters.
MIN_ENV_KEY_CHARS = 16

_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")


def derive(master: bytes, purpose: str) -> bytes:
    """The sub-key of ``master`` for ``purpose``: ``HMAC-SHA-256(master, "theradose/" + purpose)``."""
    return hmac.new(master, ("theradose/" + purpose).encode("ascii"), hashlib.sha256).digest()


def mac_hex(key: bytes, message: str) -> str:
    """Hex HMAC-SHA-256 of the UTF-8 text ``message`` under ``key``."""
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class KeyRing:
    """Master keys by id; ``active_id`` seals new values, every key verifies.

    Attributes
    ----------
    keys : mapping of str to bytes
        Master keys by key id.
    active_id : str
        The key that seals new values.
    source : str
        Where the keys came from (shown in messages; never the key itself).
    """

    keys: Mapping[str, bytes]
    active_id: str
    source: str

    def __post_init__(self) -> None:
        if self.active_id not in self.keys:
            raise InputError(f"active key id {self.active_id!r} is not among the keys of {self.source}")
        for key_id, key in self.keys.items():
            if not _KEY_ID.match(key_id):
                raise InputError(
                    f"key id {key_id!r} in {self.source}: use 1-32 letters, digits, '_', '.' or '-'"
                )
            if not key:
                raise InputError(f"key {key_id!r} in {self.source} is empty")

    def sub_key(self, purpose: Purpose, key_id: str | None = None) -> bytes:
        """The sub-key for ``purpose`` of key ``key_id`` (default: the active key).

        Raises
        ------
        KeyError
            When ``key_id`` is not in the ring (callers report it as "sealed with an unknown key").
        """
        return derive(self.keys[key_id or self.active_id], purpose)

    def has(self, key_id: str | None) -> bool:
        """True when ``key_id`` is a key of this ring."""
        return key_id is not None and key_id in self.keys

    def __repr__(self) -> str:  # never show key material
        return f"KeyRing(ids={sorted(self.keys)}, active_id={self.active_id!r}, source={self.source!r})"


def env_key_id(key: bytes) -> str:
    """The key id of a key given in the environment: ``env-`` + 12 hex digits of a keyed fingerprint."""
    return "env-" + hmac.new(key, b"theradose/key-id", hashlib.sha256).hexdigest()[:12]


def ring_from_text(secret: str, *, source: str = "$THERADOSE_SECRET_KEY") -> KeyRing:
    """A ring of one key given as text (environment variable or setting)."""
    if len(secret) < MIN_ENV_KEY_CHARS:
        raise InputError(
            f"the key in {source} has {len(secret)} characters; it needs at least {MIN_ENV_KEY_CHARS}: "
            "use `theradose audit keygen` for a random one"
        )
    key = secret.encode("utf-8")
    key_id = env_key_id(key)
    return KeyRing({key_id: key}, key_id, source)


def check_file_mode(path: Path) -> None:
    """Refuse a key file that group or others may read or write (POSIX permissions)."""
    if os.name != "posix":
        return
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(
            f"key file {path} has mode {stat.S_IMODE(mode):04o}: group and others must have no access; "
            f"run `chmod 600 {path}`"
        )


def read_key_file(path: Path) -> KeyRing:
    """Read a key file (see the module docstring); the last key is the active one."""
    path = Path(path)
    try:
        check_file_mode(path)
        text = path.read_text(encoding="ascii")
    except FileNotFoundError as exc:
        raise InputError(
            f"key file {path} does not exist: create it with `theradose audit keygen --key-file {path}`"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"key file {path} cannot be read ({type(exc).__name__}): check the file") from exc
    keys: dict[str, bytes] = {}
    active = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2 or not _HEX.match(parts[1]) or len(parts[1]) % 2:
            raise InputError(f"key file {path} line {number}: expected '<key id> <hex key>'")
        key_id, key_hex = parts
        if key_id in keys:
            raise InputError(f"key file {path} line {number}: key id {key_id!r} appears twice")
        key = bytes.fromhex(key_hex)
        if len(key) < MIN_FILE_KEY_BYTES:
            raise InputError(
                f"key file {path} line {number}: key {key_id!r} has {len(key)} bytes; "
                f"at least {MIN_FILE_KEY_BYTES} are needed"
            )
        keys[key_id] = key
        active = key_id
    if active is None:
        raise InputError(
            f"key file {path} holds no key: add one with `theradose audit keygen --key-file {path}`"
        )
    return KeyRing(keys, active, f"key file {path}")


def new_key_line(key_id: str | None = None) -> tuple[str, str]:
    """A new random key (32 bytes from the OS CSPRNG) and its line for a key file."""
    key_id = key_id or "k" + secrets.token_hex(4)
    if not _KEY_ID.match(key_id):
        raise InputError(f"key id {key_id!r}: use 1-32 letters, digits, '_', '.' or '-'")
    return key_id, f"{key_id} {secrets.token_hex(MIN_FILE_KEY_BYTES)}\n"


def add_key_to_file(path: Path, key_id: str | None = None) -> tuple[str, bool]:
    """Create ``path`` (mode 600) with a new key, or append a new active key to it (rotation).

    Returns the new key id and whether the file was created.
    """
    path = Path(path)
    if path.exists():
        ring = read_key_file(path)
        key_id, line = new_key_line(key_id)
        if key_id in ring.keys:
            raise InputError(f"key id {key_id!r} is already in {path}: choose another --key-id")
        with path.open("a", encoding="ascii") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        return key_id, False
    key_id, line = new_key_line(key_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write("# theradose master keys: '<key id> <hex>'; the last line seals, all verify.\n")
        handle.write("# Keep a copy offline; without it nothing sealed with these keys can be verified.\n")
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
    return key_id, True
