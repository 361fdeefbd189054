"""The UI's static files: its stylesheet, its small script, and the chart library.

Chart.js is the copy vendored for the monitoring report
(``keel/monitoring/static/chart.umd.min.js``, 4.6.1, MIT), read from there
rather than copied, so one file is updated for both. Everything is served
from memory after the first read, with a short cache lifetime: the files
change only when keel is upgraded.
"""

from __future__ import annotations

import functools
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

from keel.errors import NotFound
from keel.monitoring.report import CHART_JS
from keel.server.ui.page import PageRoute

STATIC = Path(__file__).resolve().parent.parent / "static"
FILES = {
    "keel.css": (STATIC / "keel.css", "text/css; charset=utf-8"),
    "keel.js": (STATIC / "keel.js", "text/javascript; charset=utf-8"),
    "chart.umd.min.js": (CHART_JS, "text/javascript; charset=utf-8"),
}
# An hour: long enough that pages do not refetch 210 kB of Chart.js each time,
# short enough that an upgraded server's files are picked up the same day.
CACHE = "public, max-age=3600"
# A one-colour 16x16 keel-blue square: browsers ask for /favicon.ico on every site.
FAVICON = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
           b'<rect width="16" height="16" rx="3" fill="#1d4e89"/></svg>')


def router() -> APIRouter:
    """``/static/{name}`` and ``/favicon.ico`` (both open: the login page needs them)."""
    api = APIRouter(route_class=PageRoute)

    @api.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in FILES:
            raise NotFound(f"no static file {name!r}")
        path, media_type = FILES[name]
        return Response(_read(path), media_type=media_type,
                        headers={"Cache-Control": CACHE, "X-Content-Type-Options": "nosniff"})

    @api.get("/favicon.ico")
    def favicon() -> Response:
        return Response(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": CACHE})

    return api


@functools.cache
def _read(path: Path) -> bytes:
    return path.read_bytes()
