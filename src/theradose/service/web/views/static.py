"""The pages' own stylesheet and script."""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import Response

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
#: The files served, with their media types (nothing else under the folder is reachable).
STATIC_FILES = {"app.css": "text/css", "app.js": "text/javascript"}


def static_file(name: str) -> Response:
    """``GET /ui/static/{name}``."""
    if name not in STATIC_FILES:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(
        (STATIC_DIR / name).read_bytes(),
        media_type=STATIC_FILES[name],
        headers={"Cache-Control": "public, max-age=300"},
    )
