"""The import contract (checked by ``make lint``): the core imports nothing from the edges, anywhere in a
module. The checker is shown failing on deliberately wrong imports, including one inside a function."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "check_import_contract.py"


def _checker():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("check_import_contract", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "theradose" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_the_source_tree_keeps_the_contract() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "import contract kept" in result.stdout


def test_a_deliberately_wrong_import_breaks_it(tmp_path: Path) -> None:
    """A core module importing an edge package, at the top, in a function, relatively or as ``from
    theradose import io``: each is a violation naming the file, the line and the import; edges importing
    the core are fine."""
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "dosimetry/__init__.py": "",
            "dosimetry/good.py": "import numpy\nfrom theradose.imaging import volume\n",
            "dosimetry/top.py": "from theradose.pipeline.run import run_study\n",
            "dosimetry/inner.py": "def f():\n    from theradose.report import write_html\n    return 1\n",
            "dosimetry/relative.py": "from ..service import app\n",
            "planning/__init__.py": "from theradose import io\n",
            "pipeline/__init__.py": "",
            "pipeline/run.py": "from theradose.dosimetry import good\n",
        },
    )
    checker = _checker()
    found = sorted((v.path.relative_to(root).as_posix(), v.line, v.imported) for v in checker.check(root))
    assert found == [
        ("theradose/dosimetry/inner.py", 2, "theradose.report"),
        ("theradose/dosimetry/relative.py", 1, "theradose.service"),
        ("theradose/dosimetry/top.py", 1, "theradose.pipeline.run"),
        ("theradose/planning/__init__.py", 1, "theradose.io"),
    ]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(root)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "import contract broken: 4 import(s)" in result.stdout
    assert (
        "theradose/dosimetry/inner.py:2: theradose.dosimetry.inner imports theradose.report" in result.stdout
    )


def test_volume_and_resample_import_one_way() -> None:
    """``imaging.resample`` uses ``Volume``; ``imaging.volume`` imports nothing else of theradose.imaging
    (no cycle between the two, function-level imports included)."""
    import ast

    path = ROOT / "src" / "theradose" / "imaging" / "volume.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module is not None
    } | {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not any(name.startswith("theradose.imaging") for name in imported), imported
