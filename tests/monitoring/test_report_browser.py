"""The HTML monitoring report in a real browser (headless Chromium from the
distribution, driven by Playwright): it opens from a file with no network,
raises no error, and draws every chart."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from keel.monitoring.report import write_report
from tests.conftest import service_missing
from tests.monitoring.test_report import ODD_NAMES, feature, sample_data

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# The series colours of the distribution charts (the template's REFERENCE and CURRENT).
REFERENCE_RGB = (0x7B, 0x8F, 0xB0)
CURRENT_RGB = (0xE4, 0x57, 0x2E)

# For each chart canvas: how many pixels are painted, and how many are
# exactly the reference and the current colour (solid bar interiors).
PIXELS_JS = """([ref, cur]) => Array.from(document.querySelectorAll('canvas[data-chart]'))
.map(c => {
  const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let painted = 0, reference = 0, current = 0;
  for (let i = 0; i < px.length; i += 4) {
    if (px[i + 3] === 0) continue;
    painted++;
    if (px[i] === ref[0] && px[i + 1] === ref[1] && px[i + 2] === ref[2]) reference++;
    if (px[i] === cur[0] && px[i + 1] === cur[1] && px[i + 2] === cur[2]) current++;
  }
  return {chart: c.dataset.chart, drawn: c.dataset.drawn || null, painted, reference, current};
})"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium for the module; Debian's package, not a downloaded one."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_missing("browser tests skipped: Playwright is not installed "
                        "(pip install -e '.[dev]')")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        service_missing("browser tests skipped: no chromium on PATH (apt-get install chromium)")
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium refuses its sandbox.
        chromium = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@dataclass
class Opened:
    page: Page
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def open_report(browser: Browser, tmp_path: Path) -> Iterator[Any]:
    """Write a report to a file and open it from its file:// URL, as a user
    double-clicking it would, recording console errors, page errors and requests."""
    opened: list[Opened] = []

    def open_(data: dict[str, Any]) -> Opened:
        path = write_report(data, tmp_path / f"report-{len(opened)}.html")
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        seen = Opened(page)
        page.on("console", lambda msg: seen.errors.append(msg.text)
                if msg.type == "error" else None)
        page.on("pageerror", lambda exc: seen.errors.append(str(exc)))
        page.on("request", lambda request: seen.requests.append(request.url))
        page.goto(path.as_uri())  # returns after the load event: every inline script ran
        opened.append(seen)
        return seen

    yield open_
    for seen in opened:
        seen.page.close()


def charts(page: Page) -> list[dict[str, Any]]:
    return list(page.evaluate(PIXELS_JS, [list(REFERENCE_RGB), list(CURRENT_RGB)]))


def test_report_draws_every_chart_offline_without_errors(open_report: Any) -> None:
    data = sample_data()
    opened = open_report(data)

    assert opened.errors == []
    assert all(url.startswith(("file:", "data:")) for url in opened.requests), opened.requests
    drawn = charts(opened.page)
    assert [c["chart"] for c in drawn] == ["feature"] * len(data["features"]) + \
        ["trend", "performance"]
    assert all(c["drawn"] == "1" for c in drawn), drawn
    assert all(c["painted"] > 1000 for c in drawn), drawn
    # every distribution chart shows both series, as bars of their colours
    assert all(c["reference"] > 50 and c["current"] > 50
               for c in drawn if c["chart"] == "feature"), drawn


def test_report_shows_names_and_verdict_as_text(open_report: Any) -> None:
    data = sample_data(drifted=True)
    page = open_report(data).page

    assert page.inner_text("#verdict") == "DRIFT"
    names = page.locator("#feature-table td.name").all_inner_texts()
    assert names == [f["feature"] for f in data["features"]]
    assert set(ODD_NAMES) <= set(names)  # shown as typed, not interpreted as HTML
    assert page.title() == data["title"]


def test_feature_table_sorts_by_a_clicked_column(open_report: Any) -> None:
    page = open_report(sample_data()).page

    page.click("#feature-table th:has-text('importance')")
    # descending first; the two features without an importance go last
    assert page.locator("#feature-table td.name").all_inner_texts()[:2] == ["age", "income"]
    page.click("#feature-table th:has-text('importance')")
    assert page.locator("#feature-table td.name").all_inner_texts()[:2] == ["income", "age"]


def test_empty_sections_draw_nothing_and_raise_nothing(open_report: Any) -> None:
    opened = open_report(sample_data(trend=[], performance=[], alerts=[]))

    assert opened.errors == []
    assert [c["chart"] for c in charts(opened.page)] == ["feature"] * 6
    assert opened.page.is_visible("text=No monitoring history yet")


def test_fifty_features_all_drawn(open_report: Any) -> None:
    bins = [f"bin {i}" for i in range(10)]
    features = [feature(f"f{i:02d}", "numeric", "psi", 0.01 * i, None, 0.2, i >= 40, bins,
                        [0.1] * 10, [0.05, 0.15] * 5) for i in range(50)]
    trend = [{"time": 1_735_689_600_000 + i * 3_600_000, "share_drifted": 0.2,
              "scores": {f["feature"]: f["statistic"] for f in features}} for i in range(24)]
    opened = open_report(sample_data(features=features, trend=trend, share_drifted=0.2))

    assert opened.errors == []
    drawn = charts(opened.page)
    assert len(drawn) == 52
    assert all(c["drawn"] == "1" and c["painted"] > 1000 for c in drawn), drawn
