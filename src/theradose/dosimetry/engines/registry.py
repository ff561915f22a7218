"""The dose-engine registry: the voxel dose engines, as an enum for code and as data for people.

``theradose/data/engines.toml`` describes each engine (title, method, primary reference); :class:`DoseEngine`
has one member per entry. A user's engine name is converted once, at the boundary (study file, command
line, batch study), with :func:`parse_engine`; inside theradose the enum travels, never a re-checked string.

Public API::

    from theradose.dosimetry.engines.registry import DoseEngine, engine_info, parse_engine

    parse_engine("VSV")                 # DoseEngine.VSV
    engine_info(DoseEngine.MC).title    # 'Monte Carlo (photons) with local or kernel electrons'
"""

from __future__ import annotations

import difflib
import functools
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources

from theradose.errors import DataError, InputError

ENGINE_DATA_FILE = "engines.toml"


class DoseEngine(StrEnum):
    """A voxel dose engine (values as written in study files and on the command line)."""

    LOCAL = "local"
    VSV = "vsv"
    MC = "mc"


@dataclass(frozen=True)
class EngineInfo:
    """What an engine computes and its primary reference (from ``data/engines.toml``)."""

    engine: DoseEngine
    title: str
    method: str
    reference: str
    photons: bool


@functools.lru_cache(maxsize=1)
def _table() -> dict[DoseEngine, EngineInfo]:
    try:
        raw = tomllib.loads(resources.files("theradose.data").joinpath(ENGINE_DATA_FILE).read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DataError(f"cannot read {ENGINE_DATA_FILE} ({exc}): reinstall theradose") from None
    raw.pop("schema_version", None)
    if set(raw) != {e.value for e in DoseEngine}:
        raise DataError(
            f"{ENGINE_DATA_FILE} lists {sorted(raw)} but theradose runs {[e.value for e in DoseEngine]}: "
            "reinstall theradose"
        )
    return {
        DoseEngine(name): EngineInfo(
            DoseEngine(name), str(e["title"]), str(e["method"]), str(e["reference"]), bool(e["photons"])
        )
        for name, e in raw.items()
    }


def engine_names() -> tuple[str, ...]:
    """Engine names in registry order."""
    return tuple(e.value for e in _table())


def engine_info(engine: DoseEngine | str) -> EngineInfo:
    """Title, method and reference of an engine."""
    return _table()[parse_engine(engine)]


def parse_engine(value: DoseEngine | str, *, field: str = "engine") -> DoseEngine:
    """The engine a user wrote (case-insensitive).

    Raises
    ------
    InputError
        Unknown engine; the message names ``field``, the value, the choices and a close match.
    """
    if isinstance(value, DoseEngine):
        return value
    key = str(value).strip().lower()
    try:
        return DoseEngine(key)
    except ValueError:
        pass
    names = [e.value for e in DoseEngine]
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.4)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise InputError(f"{field} {value!r} is not a dose engine{hint}: use one of {', '.join(names)}") from None


__all__ = ["DoseEngine", "EngineInfo", "engine_info", "engine_names", "parse_engine"]
