"""The web UI in a real browser (headless Chromium from the distribution, driven
by Playwright) against a live server: sign in through the form, every page
without a script error, charts drawn, the runs filter, promotion by role."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import service_missing
from tests.server.conftest import Server
from tests.server.test_ui import Site, populate

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# Per chart canvas: its id, whether it was marked drawn, and how many pixels
# Chart.js painted (a blank canvas has none).
CANVASES_JS = """() => Array.from(document.querySelectorAll('canvas[data-chart]')).map(c => {
  const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let painted = 0;
  for (let i = 3; i < px.length; i += 4) { if (px[i] !== 0) painted++; }
  return {chart: c.dataset.chart, drawn: c.dataset.drawn || null, painted};
})"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium for the module; Debian's package, not a downloaded one."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_missing("browser tests skipped: Playwright is not installed "
                        "(pip install -e '.[dev]')")
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        service_missing("browser tests skipped: no chromium on PATH (apt-get install chromium)")
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium refuses its sandbox.
        chromium = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@dataclass
class Visit:
    """A browser tab recording what went wrong in it."""

    page: Page
    url: str
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def open(self, path: str) -> None:
        answer = self.page.goto(self.url + path)
        assert answer is not None and answer.ok, (path, answer and answer.status)
        self.page.wait_for_load_state("load")

    def charts(self) -> list[dict[str, Any]]:
        # Charts are drawn by a deferred script after load; wait for every canvas.
        self.page.wait_for_function("""() => Array.from(document.querySelectorAll(
            'canvas[data-chart]')).every(c => c.dataset.drawn === '1')""", timeout=10_000)
        return list(self.page.evaluate(CANVASES_JS))


@pytest.fixture
def site(server: Server, tmp_path: Path) -> Site:
    return populate(server.ws, tmp_path)


@pytest.fixture
def visit(browser: Browser, server: Server) -> Iterator[Visit]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    seen = Visit(page, server.url)
    page.on("console", lambda msg: seen.errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: seen.errors.append(str(exc)))
    page.on("request", lambda request: None if request.url.startswith(server.url)
            else seen.foreign.append(request.url))
    yield seen
    context.close()


def sign_in(visit: Visit, secret: str, path: str = "/") -> None:
    """Open ``path``, be sent to the login form, sign in, come back."""
    visit.page.goto(visit.url + path)
    assert "/login" in visit.page.url
    visit.page.fill("#token", secret)
    with visit.page.expect_navigation():
        visit.page.click("#login-form button[type=submit]")
    assert visit.page.url == visit.url + path


def test_a_viewer_browses_every_page(visit: Visit, server: Server, site: Site) -> None:
    visit.page.goto(visit.url + "/login")
    visit.page.fill("#token", "keel_not-a-token")
    visit.page.click("#login-form button[type=submit]")
    assert visit.page.is_visible("text=unknown, revoked or expired")
    visit.errors.clear()  # the 401 of the refused sign-in is logged as a console error

    sign_in(visit, server.secrets["viewer"], f"/experiments/{site.experiment_id}")
    names = visit.page.locator("#runs td.name").all_inner_texts()
    assert sorted(names) == ["fast", "slow", "trained", "wide"]
    visit.page.fill("#filter", "metrics.auc > 0.9 and params.lr = '0.1'")
    with visit.page.expect_navigation():
        visit.page.press("#filter", "Enter")
    assert visit.page.locator("#runs td.name").all_inner_texts() == ["fast"]

    visit.page.click("#runs td.name a")
    visit.page.wait_for_url(f"**/runs/{site.runs['fast']}")
    drawn = visit.charts()
    assert [c["chart"] for c in drawn] == ["m0", "m1"]  # auc and loss
    assert all(c["drawn"] == "1" and c["painted"] > 500 for c in drawn), drawn
    image = visit.page.locator("img.preview[alt='plots/dot.png']")
    image.scroll_into_view_if_needed()  # previews load lazily
    image.evaluate("img => img.complete || new Promise(done => img.onload = done)")
    assert image.evaluate("img => img.naturalWidth") == 8
    assert visit.page.is_visible("text=<img src=x onerror=alert(1)>")  # text, not markup

    pages = {"/": 0, f"/compare?runs={site.runs['fast']},{site.runs['slow']}": 2,
             "/datasets": 0, "/datasets/customers": 4, "/models": 0, "/models/churner": 0,
             "/deployments": 0, "/deployments/prod": 4, "/monitoring": 1,
             f"/monitoring/{site.record_id}": 1}
    for path, count in pages.items():
        visit.open(path)
        drawn = visit.charts()
        assert len(drawn) == count, (path, drawn)
        assert all(c["painted"] > 500 for c in drawn), (path, drawn)
        assert visit.errors == [], (path, visit.errors)
    visit.open("/models/churner")
    assert visit.page.locator("#promote").count() == 0  # a viewer cannot promote
    assert visit.page.is_visible("text=customers@1")  # the version's lineage
    assert visit.foreign == []


def test_an_admin_promotes_through_the_form(visit: Visit, server: Server, site: Site) -> None:
    sign_in(visit, server.secrets["admin"], f"/models/{site.model}")
    visit.page.fill("#promote-form input[name=alias]", "champion")
    visit.page.fill("#promote-form input[name=reason]", "best holdout auc")
    with visit.page.expect_navigation():
        visit.page.click("#promote")
    assert visit.page.is_visible("text=churner/1 is now 'champion'")
    assert visit.page.locator("#history").inner_text().count("best holdout auc") == 1
    assert server.ws.store.get_registered_model("churner").aliases == {"champion": 1}
    assert visit.errors == []
