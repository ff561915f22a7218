"""One registry per concept: engines as data and enum, no copied option tuples left in the source tree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from theradose.dosimetry.engines.registry import DoseEngine, engine_info, engine_names, parse_engine
from theradose.errors import InputError

SRC = Path(__file__).resolve().parents[1] / "src" / "theradose"


def _files_with(pattern: str) -> list[str]:
    regex = re.compile(pattern)
    return sorted(
        str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if regex.search(p.read_text(encoding="utf-8"))
    )


@pytest.mark.parametrize(
    "pattern",
    [
        r"""["']local["'],\s*["']vsv["'],\s*["']mc["']""",
        r"""["']psma["'],\s*["']dotatate["']""",
        r"""["']dotatate["'],\s*["']psma["']""",
    ],
)
def test_option_tuples_are_not_copied_into_the_code(pattern: str) -> None:
    """The engine names live in the engine registry (its enum) and the protocol names in the protocol
    files; a copied tuple of them in a module is how registries drift apart."""
    assert len(_files_with(pattern)) <= 1, _files_with(pattern)


def test_engine_registry_describes_every_engine_of_the_enum() -> None:
    assert engine_names() == tuple(e.value for e in DoseEngine)
    for engine in DoseEngine:
        info = engine_info(engine)
        assert info.title and info.method and "J Nucl Med" in info.reference
    assert engine_info("mc").photons and not engine_info("local").photons


def test_engine_names_are_parsed_once_with_a_clear_error() -> None:
    assert parse_engine("VSV") is DoseEngine.VSV
    assert parse_engine(DoseEngine.MC) is DoseEngine.MC
    with pytest.raises(
        InputError, match=r"dose.engines entry 'lokal' is not a dose engine \(did you mean 'local'\?\)"
    ):
        parse_engine("lokal", field="dose.engines entry")
