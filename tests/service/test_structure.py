"""The shape of the service package: the JSON API and the pages share one operations layer.

Checked on the source (AST), function-level imports included: no view or router imports a private name
of another module, no page imports an API router (no route handler is called as a function), the
operations import neither the API nor the pages, and only the settings module reads the environment.
"""

from __future__ import annotations

import ast
from pathlib import Path

import theradose.service

SERVICE = Path(theradose.service.__file__).resolve().parent


def _modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "migrations" not in p.parts)


def _imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every ``from module import name`` and ``import module`` (name '')."""
    out: list[tuple[str, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.extend((node.module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            out.extend((alias.name, "") for alias in node.names)
    return out


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_private_name_is_imported_from_another_module() -> None:
    offenders = [
        (path.relative_to(SERVICE).as_posix(), module, name)
        for path in _modules(SERVICE)
        for module, name in _imports(path)
        if module.startswith("theradose")
        and (_private(name) or any(_private(part) for part in module.split(".")))
    ]
    assert offenders == []


def test_pages_call_operations_not_api_routes() -> None:
    web = SERVICE / "web"
    offenders = [
        (path.relative_to(SERVICE).as_posix(), module)
        for path in _modules(web)
        for module, name in _imports(path)
        if module.startswith("theradose.service.api") or (module == "theradose.service" and name == "api")
    ]
    assert offenders == []


def test_operations_import_neither_api_nor_pages() -> None:
    offenders = [
        (path.name, module)
        for path in _modules(SERVICE / "operations")
        for module, _name in _imports(path)
        if module.startswith(("theradose.service.api", "theradose.service.web", "fastapi"))
    ]
    assert offenders == []


def test_only_the_settings_module_reads_the_environment() -> None:
    readers = []
    for path in _modules(SERVICE):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                readers.append(path.relative_to(SERVICE).as_posix())
    assert sorted(set(readers)) == ["settings.py"]


def test_every_page_route_is_in_the_one_route_table() -> None:
    from fastapi.routing import APIRoute

    from theradose.service.web.routes import ROUTES, build_router

    table = {(method, "/ui" + path) for method, path, _view in ROUTES}
    routes = {(m, r.path) for r in build_router().routes if isinstance(r, APIRoute) for m in r.methods}
    assert routes == table
    views = {view.__module__ for _m, _p, view in ROUTES}
    assert all(v.startswith("theradose.service.web.views.") for v in views)
