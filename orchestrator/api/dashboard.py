"""`/ui`: the live dashboard, a static page whose script reads the API with the user's key.

The page and its files are public (they hold no data); every figure comes from the
authenticated routes, with the operator key the user pastes into the page's login form.
The third-party code is vendored under `ui/static/vendor/` (see `ui/package.json`), so the
page works on a closed network: its Content-Security-Policy allows this origin only.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from orchestrator.api.errors import ApiError

__all__ = ["STATIC_DIR", "router"]

STATIC_DIR = Path(__file__).parent / "ui" / "static"

# Every servable file, by its path under /ui/assets/: a fixed set read at start-up, so no
# request path can reach outside the directory.
_FILES = {p.relative_to(STATIC_DIR).as_posix(): p for p in STATIC_DIR.rglob("*") if p.is_file()}
# Module scripts must come as JavaScript, whatever the host's mime.types says.
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".txt": "text/plain"}

_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # Revalidate each load, so an upgrade's files are seen at once.
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["dashboard"], include_in_schema=False)


@router.get("/ui", name="dashboard")
async def dashboard() -> FileResponse:
    """The dashboard page."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=_HEADERS)


@router.get("/ui/assets/{path:path}", name="dashboard_asset")
async def dashboard_asset(path: str) -> FileResponse:
    """A script, style sheet or licence text of the dashboard."""
    file = _FILES.get(path)
    if file is None:
        raise ApiError(404, "file_not_found", f"the dashboard has no file {path!r}")
    media_type = _TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0]
    return FileResponse(file, media_type=media_type, headers=_HEADERS)
