"""Content-hash cache of pipeline steps.

Each step's result is stored under a key that is the SHA-256 of the step name, the step's parameters,
the keys (or content hashes) of its inputs and the theradose version, so a re-run after a change
recomputes exactly the steps downstream of the change. Entries are written atomically (temporary file,
then rename), so an interrupted run never leaves a truncated entry. Entries are Python pickles written
by this package; a cache folder is private to its user and must not be filled from untrusted sources.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

#: Bump when a step's computation changes in a way its parameters do not capture.
CACHE_FORMAT = 1


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.ndarray):
        return array_hash(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float):
        return repr(value)
    return value if value is None or isinstance(value, (str, int, bool)) else repr(value)


def array_hash(array: np.ndarray[Any, Any]) -> str:
    """SHA-256 of an array's dtype, shape and bytes."""
    h = hashlib.sha256()
    contiguous = np.ascontiguousarray(array)
    h.update(f"{contiguous.dtype.str}{contiguous.shape}".encode())
    h.update(contiguous.tobytes())
    return h.hexdigest()


def key_of(step: str, parts: Mapping[str, Any]) -> str:
    """Cache key of a step: SHA-256 of its name, parameters/input keys, version and cache format."""
    from theradose import __version__

    payload = {"step": step, "parts": _canonical(parts), "version": __version__, "format": CACHE_FORMAT}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_hash(paths: Iterable[Path]) -> dict[str, str]:
    """Content hashes of files and of every file under folders: ``{path: sha256}`` (sorted, hidden
    skipped)."""
    out: dict[str, str] = {}
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            if any(part.startswith(".") for part in f.relative_to(root.parent).parts):
                continue
            out[str(f)] = file_hash(f)
    return out


@dataclass
class StepCache:
    """A folder of cached step results with hit/miss bookkeeping.

    Parameters
    ----------
    folder : Path or None
        Where entries live; None disables caching (every step computes).
    """

    folder: Path | None
    hits: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)

    def get_or_compute(self, step: str, key: str, compute: Callable[[], T]) -> T:
        """The cached result of ``step`` under ``key``, or ``compute()`` stored under it."""
        if self.folder is not None:
            entry = self.folder / f"{step}-{key[:32]}.pkl"
            if entry.is_file():
                try:
                    with entry.open("rb") as fh:
                        value: T = pickle.load(fh)
                    self.hits.append(step)
                    return value
                except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
                    entry.unlink(missing_ok=True)
        value = compute()
        self.misses.append(step)
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f".{step}-{uuid.uuid4().hex}.tmp"
            with tmp.open("wb") as fh:
                pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, entry)
        return value
