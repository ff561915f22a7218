"""One value per concept in the whole tree: the tumour α/β, the soft-tissue density, the LQ parameters.

These scans read every data file and module shipped in ``src/`` (and the examples), so a copy of a number
in a second place fails here before it can disagree with the registry.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from theradose.tissues import get_tissue

ROOT = Path(__file__).resolve().parents[1]
TREES = (ROOT / "src", ROOT / "examples")


def _walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, str(key)), value
            yield from _walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, (*path, str(i)))


def _data_files() -> Iterator[tuple[Path, Any]]:
    for tree in TREES:
        for path in sorted(tree.rglob("*")):
            if path.suffix == ".toml":
                yield path, tomllib.loads(path.read_text(encoding="utf-8"))
            elif path.suffix == ".json" and "schema" not in path.name:
                yield path, json.loads(path.read_text(encoding="utf-8"))


def _lq_entries(key: str) -> list[tuple[str, tuple[str, ...], Any]]:
    found = []
    for path, data in _data_files():
        for where, value in _walk(data):
            if where[-1] == key:
                found.append((str(path.relative_to(ROOT)), where, value))
    return found


def test_tumour_alpha_beta_has_one_value_in_the_whole_tree() -> None:
    """Exactly one data entry states an α/β for tumour tissue (the tissue registry), and no module holds
    an α/β literal: protocols, the pipeline and the planner all take it from there."""
    tumour = [
        (file, where, value)
        for file, where, value in _lq_entries("alpha_beta_gy")
        if any(re.search(r"tumou?r|lesion|neoplasm", part, re.IGNORECASE) for part in where)
    ]
    assert tumour == [("src/theradose/data/tissues.toml", ("tumour", "alpha_beta_gy"), 10.0)]
    assert get_tissue("tumour").alpha_beta_gy == 10.0
    literal = re.compile(r"alpha_beta(_gy)?\s*[=:]\s*[0-9]")
    modules = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "src").rglob("*.py")
        if literal.search(p.read_text(encoding="utf-8"))
    ]
    assert modules == []


def test_every_lq_parameter_is_written_once() -> None:
    """α/β and repair half-times appear only in the tissue registry (none copied into protocols)."""
    for key in ("alpha_beta_gy", "repair_half_time_h"):
        files = {file for file, _where, _value in _lq_entries(key)}
        assert files == {"src/theradose/data/tissues.toml"}, key


def test_soft_tissue_density_is_written_once() -> None:
    """The one soft-tissue density (1.03 g/mL, ICRU 46) is in the tissue registry; no module holds a
    soft-tissue density literal (1.03 or 1.04) of its own."""
    assert get_tissue("soft_tissue").density_g_per_ml == 1.03
    literal = re.compile(r"(?i)soft\w*\s*[=:(,]\s*1\.0[34]\b|\b1\.0[34]\s*#.*soft")
    modules = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "src").rglob("*.py")
        if literal.search(p.read_text(encoding="utf-8"))
    ]
    assert modules == []
    densities = [
        (file, where)
        for file, where, _value in _lq_entries("density_g_per_ml")
        if file != "src/theradose/data/tissues.toml"
    ]
    assert densities == []
