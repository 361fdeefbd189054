"""Rendering a page of the web UI: the Jinja2 environment, its filters, the
response headers every page carries, and the route class that turns a keel
error into an HTML page instead of the API's JSON.

Pages load scripts and styles only from ``/static/`` (the Content-Security-
Policy forbids anything else, inline scripts included), so a run name or tag
holding markup can neither reach the network nor run code: autoescaping
covers the HTML, :func:`chart_json` the data handed to the charts.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute

from keel.errors import KeelError
from keel.monitoring.report import script_json
from keel.server import tokens

if TYPE_CHECKING:
    import jinja2

    from keel.entities import Token

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
# 'self' only: the chart library and keel.js are served by this server, the
# chart data sits in a non-executable JSON block, and forms post back here.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "same-origin",
           # Pages show what a token may read: not kept for the back button after logout.
           "Cache-Control": "no-store"}
NAV = (("/", "Experiments"), ("/datasets", "Datasets"), ("/models", "Models"),
       ("/deployments", "Deployments"), ("/monitoring", "Monitoring"))


def token_of(request: Request) -> Token | None:
    """The token the middleware checked for this request; None when auth is off."""
    state = request.scope.get("state") or {}
    return state.get("token") if isinstance(state, Mapping) else None


def has_role(request: Request, auth: bool, needed: str) -> bool:
    """Whether this request's token includes ``needed`` (always, with auth off)."""
    token = token_of(request)
    if token is None:
        return not auth
    return tokens.allows(token.role, needed)


def section(path: str) -> str:
    """The nav entry a page belongs to: runs and comparisons are under Experiments."""
    path = path.removeprefix("/ui")  # the forms' routes: /ui/models/... is a models page
    for target, _ in NAV[1:]:
        if path == target or path.startswith(target + "/"):
            return target
    return "/"


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered with ``context`` plus what the layout needs."""
    page = _environment().get_template(template).render(
        nav=NAV, section=section(request.url.path), token=token_of(request), **context)
    return HTMLResponse(page, status_code=status, headers=HEADERS)


def error_page(request: Request, exc: KeelError) -> HTMLResponse:
    """A keel error as a page with its message and hint, at the error's status."""
    return render(request, "error.html.j2", status=exc.status, title="Error",
                  message=exc.message, hint=exc.hint or "")


def chart_json(charts: Mapping[str, Any]) -> Any:
    """Chart data for the page's JSON block, safe inside ``<script>``: NaN and
    infinities become null (gaps), ``<``, ``>`` and ``&`` become escapes."""
    from markupsafe import Markup

    return Markup(script_json(_clean(charts)))


def href(path: str, **params: Any) -> str:
    """``path`` with ``params`` as its query; None and empty values are left out,
    lists repeat their key (``col=a&col=b``)."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        values = value if isinstance(value, list | tuple) else [value]
        pairs += [(key, str(v)) for v in values if v is not None and v != ""]
    return path + ("?" + urlencode(pairs) if pairs else "")


class PageRoute(APIRoute):
    """A route whose keel errors become HTML pages (the app's handler answers
    MLflow's JSON, right for the API, wrong for a person in a browser)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except KeelError as exc:
                return error_page(request, exc)

        return guarded


def _clean(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def when(epoch_ms: Any) -> str:
    """Epoch milliseconds as UTC time, "—" for none."""
    if epoch_ms is None:
        return "—"
    moment = datetime.fromtimestamp(float(epoch_ms) / 1000, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def number(value: Any) -> str:
    """A metric for a table: 4 significant digits; "—" for missing or NaN."""
    if value is None or isinstance(value, bool):
        return "—" if value is None else str(value)
    try:
        figure = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(figure):
        return "—"
    if math.isinf(figure):
        return "∞" if figure > 0 else "-∞"
    if abs(figure) >= 1e15 or (figure != 0 and abs(figure) < 1e-3):
        return f"{figure:.3e}"
    if figure.is_integer():
        return f"{int(figure):,}"
    if abs(figure) >= 1e4:
        return f"{figure:,.0f}"
    return f"{figure:.4g}"


def size(count: Any) -> str:
    """Bytes as people read them: 812 B, 3.4 KB, 1.2 GB."""
    if count is None:
        return "—"
    amount = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if amount < 1000 or unit == "TB":
            return f"{int(amount)} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{amount:.1f} TB"  # unreachable: the loop returns at TB


def seconds(value: Any) -> str:
    """A duration in seconds: 0.4 s, 12 s, 3 min 20 s, 2 h 5 min."""
    if value is None:
        return "—"
    total = float(value)
    if total < 10:
        return f"{total:.1f} s"
    if total < 60:
        return f"{total:.0f} s"
    minutes, rest = divmod(int(total), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    return f"{minutes // 60} h {minutes % 60} min"


def percent(value: Any) -> str:
    """A share (0..1) as a percentage with one decimal: 0.031 -> 3.1%."""
    if value is None:
        return "—"
    figure = float(value)
    return "—" if math.isnan(figure) else f"{figure:.1%}"


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # names, tags, messages and previews come from users
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, number=number, size=size, seconds=seconds, percent=percent)
    env.globals.update(href=href, chart_json=chart_json)
    return env
