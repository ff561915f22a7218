"""The import contract of theradose: the core imports nothing from the edges.

Core packages and modules (``CORE``) must not import, anywhere in a module (top level, functions,
``TYPE_CHECKING`` blocks), from the edge packages (``EDGES``). Run ``python scripts/check_import_contract.py``
(part of ``make lint``); exit status 1 and one line per violation when the contract is broken.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "theradose"
#: Core: pure computation, imported by the edges and never importing them.
CORE = (
    "nuclides",
    "imaging",
    "kinetics",
    "dosimetry",
    "radiobiology",
    "planning",
    "reading",
    "qa",
    "safety",
    "phantoms",
    "pharmacy",
    "organs",
    "tissues",
    "products",
)
#: Edges: input/output, service, command line, batch runs, orchestration, reports.
EDGES = ("io", "service", "cli", "population", "pipeline", "report")


@dataclass(frozen=True)
class Violation:
    """One forbidden import: where it is and what it imports."""

    path: Path
    line: int
    importer: str
    imported: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported} (core must not import edges)"


def module_name(path: Path, root: Path) -> str:
    """Dotted module name of ``path`` below the source root ``root`` (``.../src``)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(tree: ast.AST, module: str, *, is_package: bool) -> Iterator[tuple[int, str]]:
    """Every module an AST imports, anywhere in it, as absolute dotted names (relative imports resolved)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:  # ``from theradose import io`` imports the io package
                yield node.lineno, f"{target}.{alias.name}"


def _area(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == PACKAGE else None


def check(root: Path, core: Iterable[str] = CORE, edges: Iterable[str] = EDGES) -> list[Violation]:
    """Violations of the contract in the ``theradose`` package below the source root ``root``."""
    core_set, edge_set = set(core), set(edges)
    found: list[Violation] = []
    for path in sorted((root / PACKAGE).rglob("*.py")):
        module = module_name(path, root)
        if _area(module) not in core_set:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, target in imported_modules(tree, module, is_package=path.name == "__init__.py"):
            if _area(target) in edge_set:
                found.append(Violation(path, line, module, target))
    unique: dict[tuple[Path, int, str | None], Violation] = {}
    for v in found:  # ``from X import Y`` reports X, not also X.Y
        unique.setdefault((v.path, v.line, _area(v.imported)), v)
    return list(unique.values())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else Path(__file__).resolve().parents[1] / "src"
    violations = check(root)
    for v in violations:
        print(v)
    if violations:
        print(f"import contract broken: {len(violations)} import(s) from an edge package in the core")
        return 1
    print(f"import contract kept: {', '.join(CORE)} import nothing from {', '.join(EDGES)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
