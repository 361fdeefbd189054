"""The HTML monitoring report as a file: self-contained, escaped, written atomically."""

from __future__ import annotations

import json
import math
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from keel.errors import InvalidInput
from keel.monitoring.report import render_report, trend_features, write_report

HOUR_MS = 3_600_000
T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC
# Names a user's data may well hold: HTML metacharacters, and one that would
# end the inline <script> element if the JSON were embedded naively.
ODD_NAMES = ['a<b>&"c"', "</script>"]


def feature(name: str, kind: str, method: str, statistic: float, p_value: float | None,
            threshold: float, drifted: bool, labels: list[str], reference: list[float],
            current: list[float], importance: float | None = None,
            attribution: float | None = None) -> dict[str, Any]:
    return {"feature": name, "kind": kind, "method": method, "statistic": statistic,
            "p_value": p_value, "threshold": threshold, "drifted": drifted,
            "distribution": {"labels": labels, "reference": reference, "current": current},
            "importance": importance, "attribution": attribution}


def sample_data(**changes: Any) -> dict[str, Any]:
    """A report of a deployment: 3 numeric features, 1 categorical, 2 oddly named,
    3 past checks, 2 model versions measured, one alert."""
    bins = ["[0, 10)", "[10, 20)", "[20, 40)", "[40, 80)", "[80, 160]"]
    features = [
        feature("age", "numeric", "ks", 0.31, 1.2e-9, 0.05, True, bins,
                [0.1, 0.3, 0.3, 0.2, 0.1], [0.02, 0.08, 0.3, 0.35, 0.25],
                importance=0.12, attribution=0.61),
        feature("income", "numeric", "wasserstein", 0.04, None, 0.1, False, bins,
                [0.2, 0.2, 0.2, 0.2, 0.2], [0.22, 0.18, 0.2, 0.2, 0.2],
                importance=0.05, attribution=0.07),
        feature("balance", "numeric", "psi", 0.27, None, 0.2, True, bins,
                [0.3, 0.3, 0.2, 0.1, 0.1], [0.1, 0.2, 0.2, 0.3, 0.2],
                importance=float("nan"), attribution=None),
        feature("country", "categorical", "chi2", 3.1, 0.38, 0.05, False, ["DE", "FR", "other"],
                [0.5, 0.3, 0.2], [0.45, 0.33, 0.22], importance=None, attribution=0.02),
        feature(ODD_NAMES[0], "categorical", "jensenshannon", 0.02, None, 0.1, False,
                ["<x>", "&y"], [0.5, 0.5], [0.55, 0.45]),
        feature(ODD_NAMES[1], "numeric", "ks", 0.05, 0.62, 0.05, False, ["[0, 1)", "[1, 2]"],
                [0.5, 0.5], [0.48, 0.52]),
    ]
    data: dict[str, Any] = {
        "title": "keel drift report: deployment prod",
        "generated_at": "2025-01-01T03:05:00+00:00",
        "subject": "deployment prod, window 1h",
        "reference": {"label": "transactions@2", "rows": 120_000},
        "current": {"label": "inference log 02:00-03:00", "rows": 4_312},
        "share_drifted": 2 / 6, "drifted": False, "drift_share_threshold": 0.5,
        "features": features,
        "trend": [{"time": T0 + i * HOUR_MS, "share_drifted": share,
                   "scores": {"age": 0.05 + 0.1 * i, "balance": 0.1 * i, "income": 0.04}}
                  for i, share in enumerate([0.0, 1 / 6, 2 / 6])],
        "performance": [{"time": T0 + i * HOUR_MS, "version": version, "metric": "accuracy",
                         "value": value - 0.01 * i, "low": value - 0.02 - 0.01 * i,
                         "high": value + 0.02 - 0.01 * i, "n": 500}
                        for version, value in [("3", 0.91), ("4", 0.93)] for i in range(3)],
        "alerts": [{"time": T0 + 2 * HOUR_MS, "rule": "feature age drifted", "value": 0.31,
                    "message": "age: ks p=1.2e-09 < 0.05"}],
    }
    data.update(changes)
    return data


class Scripts(HTMLParser):
    """The <script> elements of a page as an HTML parser (a browser) splits them."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._open = dict(attrs)
            self.scripts.append((self._open, ""))

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._open = None


def scripts_of(page: str) -> list[tuple[dict[str, str | None], str]]:
    parser = Scripts()
    parser.feed(page)
    parser.close()
    return parser.scripts


def test_page_loads_nothing_from_outside() -> None:
    page = render_report(sample_data())

    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.IGNORECASE)
    assert not re.search(r"<link\b", page, re.IGNORECASE)
    assert not re.search(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.IGNORECASE)
    assert not re.search(r"""url\(\s*["']?\s*(?:https?:)?//""", page, re.IGNORECASE)
    assert "@import" not in page
    # The browser is told to refuse any fetch, should something slip in later.
    assert "default-src 'none'" in page
    # The chart library is inlined, not referenced.
    assert "Chart.js v4.6.1" in page


def test_every_feature_is_named_escaped_in_table_and_chart() -> None:
    data = sample_data()
    page = render_report(data)

    for f in data["features"]:
        # once in the table, once in the caption of its distribution chart
        assert page.count(f"<td class=\"name\">{escape(f['feature'])}</td>") == 1
        assert page.count(f"<span class=\"name\">{escape(f['feature'])}</span>") == 1
    assert 'a<b>&"c"' not in page
    assert page.count("<canvas data-chart=\"feature\"") == len(data["features"])


def test_odd_feature_names_cannot_break_out_of_the_data_script() -> None:
    data = sample_data()
    page = render_report(data)

    scripts = scripts_of(page)
    assert len(scripts) == 3  # data, chart library, drawing code
    assert page.lower().count("</script>") == 3
    payload = json.loads(next(text for attrs, text in scripts if attrs.get("id") == "keel-data"))
    assert [f["feature"] for f in payload["report"]["features"]] == \
        [f["feature"] for f in data["features"]]
    assert payload["report"]["features"][4]["distribution"]["labels"] == ["<x>", "&y"]
    assert payload["report"]["trend"] == data["trend"]
    assert payload["report"]["performance"] == data["performance"]


def test_nan_becomes_null_in_the_data_and_a_dash_in_the_table() -> None:
    data = sample_data()
    assert math.isnan(data["features"][2]["importance"])
    page = render_report(data)

    payload = json.loads(next(text for attrs, text in scripts_of(page)
                              if attrs.get("id") == "keel-data"))
    assert payload["report"]["features"][2]["importance"] is None
    balance_row = re.search(r"<td class=\"name\">balance</td>.*?</tr>", page, re.DOTALL)
    assert balance_row is not None
    assert balance_row.group(0).count("—") == 3  # p-value, importance, attribution


def test_header_states_the_verdict_and_both_sides() -> None:
    page = render_report(sample_data(drifted=True, share_drifted=0.5))
    assert re.search(r'id="verdict">DRIFT<', page)
    assert "deployment prod, window 1h" in page
    assert "transactions@2 &middot; 120,000 rows" in page
    assert "inference log 02:00-03:00 &middot; 4,312 rows" in page
    assert "<b>50%</b>" in page

    calm = render_report(sample_data())
    assert re.search(r'id="verdict">NO DRIFT<', calm)
    assert "<b>33%</b>" in calm


def test_drifted_rows_and_cards_are_highlighted() -> None:
    data = sample_data()
    page = render_report(data)
    drifted = sum(f["drifted"] for f in data["features"])
    assert drifted == 2
    assert page.count('<tr class="drifted">') == drifted
    assert page.count('<figure class="card drifted">') == drifted


def test_sections_without_data_say_so_instead_of_drawing() -> None:
    page = render_report(sample_data(trend=[], performance=[], alerts=[]))

    assert "No monitoring history yet" in page
    assert "No performance measured yet" in page
    assert "No alerts fired." in page
    assert 'data-chart="trend"' not in page
    assert 'data-chart="performance"' not in page

    nothing = render_report(sample_data(features=[], trend=[], performance=[], alerts=[]))
    assert "No features were compared." in nothing
    assert "<canvas" not in nothing


def test_a_feature_without_distribution_gets_text_not_a_canvas() -> None:
    data = sample_data()
    data["features"][1]["distribution"] = {"labels": [], "reference": [], "current": []}
    page = render_report(data)
    assert "No distribution recorded for this feature." in page
    assert page.count('data-chart="feature"') == len(data["features"]) - 1


def test_trend_and_performance_charts_and_alerts_when_data_exists() -> None:
    page = render_report(sample_data())
    assert page.count('data-chart="trend"') == 1
    assert page.count('data-chart="performance"') == 1
    assert "<td class=\"when\">2025-01-01 02:00 UTC</td><td>feature age drifted</td>" in page


def test_trend_draws_drifted_features_first() -> None:
    data = sample_data()
    # age and balance drifted now; income did not, so it comes last
    assert trend_features(data) == ["age", "balance", "income"]
    assert trend_features(sample_data(trend=[])) == []


def test_missing_keys_are_named() -> None:
    data = sample_data()
    del data["alerts"]
    with pytest.raises(InvalidInput, match="alerts"):
        render_report(data)


def test_write_report_writes_the_rendered_page(tmp_path: Path) -> None:
    data = sample_data()
    path = write_report(data, tmp_path / "reports" / "prod.html")

    assert path == tmp_path / "reports" / "prod.html"
    assert path.read_text(encoding="utf-8") == render_report(data)
    assert os.listdir(path.parent) == ["prod.html"]  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # like any file the user writes


def test_failed_rendering_leaves_the_old_report_whole(tmp_path: Path) -> None:
    path = write_report(sample_data(), tmp_path / "prod.html")
    before = path.read_bytes()
    broken = sample_data()
    broken["features"][0]["statistic"] = "high"  # not a number: rendering fails

    with pytest.raises(ValueError):
        write_report(broken, path)

    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["prod.html"]


def test_write_report_refuses_a_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="is a folder"):
        write_report(sample_data(), tmp_path)
