"""The HTML monitoring report: one self-contained file that opens anywhere, offline.

>>> from keel.monitoring.report import write_report
>>> write_report(data, "drift.html")     # data: see ``render_report``

The page needs no network at all: the chart library, the CSS and the data are
inlined, and a Content-Security-Policy forbids any fetch, so a report mailed
or archived years later still shows every chart.

Vendored: ``static/chart.umd.min.js`` is Chart.js 4.6.1 (MIT License, (c) the
Chart.js Contributors; licence header kept in the file), the unmodified UMD
build of the npm package ``chart.js@4.6.1``. One library of ~210 kB draws every
chart; the template's own script only turns the embedded JSON into charts.

Jinja2 is imported inside the functions: ``import keel`` stays cheap, and this
module is only imported to render.
"""

from __future__ import annotations

import functools
import json
import math
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.durability import fsync_fd, publish
from keel.errors import InvalidInput

if TYPE_CHECKING:
    import jinja2

_HERE = Path(__file__).parent
TEMPLATE = "report.html.j2"
CHART_JS = _HERE / "static" / "chart.umd.min.js"
# Per-feature score lines in the trend chart: beyond ~5 lines the chart stops
# being readable, and the table already lists every feature.
TREND_FEATURES = 5
KEYS = ("title", "generated_at", "subject", "reference", "current", "share_drifted",
        "drifted", "drift_share_threshold", "features", "trend", "performance", "alerts")


def render_report(data: dict[str, Any]) -> str:
    """Render the monitoring report as one complete, self-contained HTML page.

    ``data`` holds ``title``, ``generated_at``, ``subject``, ``reference`` and
    ``current`` (``{"label", "rows"}``), ``share_drifted``, ``drifted``,
    ``drift_share_threshold``, and the lists ``features`` (one dict per
    feature with its test, its distributions and optional importance and
    attribution), ``trend``, ``performance`` and ``alerts`` (times in epoch
    milliseconds). Lists may be empty; NaN and None show as "—".

    Example: ``Path("drift.html").write_text(render_report(data))``
    """
    from markupsafe import Markup

    missing = [key for key in KEYS if key not in data]
    if missing:
        raise InvalidInput(f"report data lacks {', '.join(missing)}",
                           hint=f"a report needs every key of: {', '.join(KEYS)}")
    payload = {"report": _clean(data), "trend_features": trend_features(data)}
    return _environment().get_template(TEMPLATE).render(
        r=data,
        data_json=Markup(script_json(payload)),
        chart_js=Markup(_chart_js()),
        trend_features=payload["trend_features"],
    )


def write_report(data: dict[str, Any], path: str | Path) -> Path:
    """Render the report and write it to ``path`` atomically; return the path.

    The page goes to a temporary name in the same folder and is renamed into
    place, so a browser or a web server never sees half a report, and an old
    report survives a failed rendering. Missing parent folders are made.

    Example: ``write_report(data, "reports/prod.html")``
    """
    target = Path(path)
    if target.is_dir():
        raise InvalidInput(f"{target} is a folder, not a file",
                           hint="give a file name such as report.html")
    page = render_report(data).encode("utf-8")
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        # "x": a new file with the usual permissions (0o666 less the umask),
        # unlike mkstemp's 0o600, so the renamed report reads like any other file.
        with open(temp, "xb") as out:
            out.write(page)
            out.flush()
            fsync_fd(out.fileno())
        publish(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return target


def script_json(value: Any) -> str:
    """``value`` as JSON that is safe inside an HTML ``<script>`` element.

    Every ``<``, ``>`` and ``&`` becomes a ``\\u`` escape (JSON.parse reads them
    back unchanged): a feature named ``</script>`` cannot end the element, and
    ``<!--`` cannot switch the HTML parser into its escaped script states.
    """
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def trend_features(data: dict[str, Any]) -> list[str]:
    """The features drawn as score lines in the trend chart, at most ``TREND_FEATURES``:
    those drifted now first, then the highest latest scores. Scores of different
    methods (PSI, KS, ...) are not on one scale, so the score only breaks ties
    within each group; drifted-now is what a reader looks for."""
    trend = data["trend"]
    if not trend:
        return []
    latest = trend[-1]["scores"]
    names = {name for point in trend for name in point["scores"]}
    drifted = {f["feature"] for f in data["features"] if f["drifted"]}

    def rank(name: str) -> tuple[bool, float, str]:
        score = _finite(latest.get(name))
        return (name not in drifted, -score if score is not None else math.inf, name)

    return sorted(names, key=rank)[:TREND_FEATURES]


def _clean(value: Any) -> Any:
    """Plain JSON values: NaN and infinities become None (JSON has neither and
    JSON.parse rejects them); numpy scalars and arrays become Python ones."""
    if isinstance(value, dict):
        return {str(key): _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    if isinstance(value, bool | str | int) or value is None:
        return value
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _clean(value.tolist())
    return value  # json.dumps names the type it cannot encode


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _number(value: Any) -> str:
    """A statistic for the table: 4 significant digits, tiny p-values in
    scientific notation, "—" for a missing value."""
    if value is None:
        return "—"
    number = float(value)
    if math.isnan(number):
        return "—"
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    if number != 0 and abs(number) < 1e-3:
        return f"{number:.2e}"
    return f"{number:.4g}"


def _percent(value: Any, digits: int = 0) -> str:
    number = _finite(value)
    return "—" if number is None else f"{number:.{digits}%}"


def _rows(value: Any) -> str:
    return "—" if value is None else f"{int(value):,}"


def _when(epoch_ms: Any) -> str:
    """Epoch milliseconds as UTC time; the charts label their axes in UTC too,
    so the table and the charts of one report agree wherever it is opened."""
    return datetime.fromtimestamp(float(epoch_ms) / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _sort_key(value: Any) -> str:
    """The ``data-value`` a table cell sorts by: a number, or empty (sorts last)."""
    number = _finite(value)
    return "" if number is None else repr(number)


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,  # feature names and labels come from user data
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(number=_number, percent=_percent, rows=_rows, when=_when,
                       sort_key=_sort_key)
    return env


@functools.cache
def _chart_js() -> str:
    source = CHART_JS.read_text(encoding="utf-8")
    # A vendored update must not carry a "</script" that would end the inline element.
    if "</script" in source.lower():
        raise RuntimeError(f"{CHART_JS.name} contains '</script'; it cannot be inlined")
    return source
