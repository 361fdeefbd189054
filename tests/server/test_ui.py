"""The web UI over HTTP against a live server: signing in, every page for a
viewer, the runs table's filter, sort, columns and pages, promotion rights,
and the artifact route's path checks."""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

import keel
import keel.data
import keel.models
from keel.entities import VersionStats
from keel.server.ui import runs
from keel.server.ui.runs import run_count
from keel.serving import rollout
from keel.serving.stats import EDGES_MS
from keel.workspace import Workspace
from tests.server.conftest import Server

MARKUP = "<img src=x onerror=alert(1)>"


@dataclass
class Site:
    """What ``populate`` logged, to find it on the pages."""

    experiment_id: int
    runs: dict[str, str]  # run name -> id
    model: str = ""
    dataset: str = ""
    deployment: str = ""
    record_id: int = 0


def png(width: int = 8, height: int = 8) -> bytes:
    """A small red PNG, made by hand (no imaging library needed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + \
        chunk(b"IEND", b"")


def log_runs(ws: Workspace) -> Site:
    """Three runs of experiment "churn" with params, metric histories and artifacts.
    Only ``fast`` has auc > 0.9 and lr = 0.1."""
    runs = {}
    for name, lr, auc in (("fast", "0.1", 0.95), ("slow", "0.01", 0.85), ("wide", "0.1", 0.80)):
        with keel.start_run(experiment="churn", name=name, ws=ws) as run:
            run.log_params({"lr": lr, "depth": len(name)})
            for step in range(10):
                run.log_metric("loss", 1.0 / (step + 1) + auc, step=step)
            run.log_metric("auc", auc)
            run.set_tag("note", MARKUP)
            run.log_text(f"notes of {name} {MARKUP}", "notes/readme.txt")
            run.log_bytes(png(), "plots/dot.png")
            run.log_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script>'
                         '</svg>', "plots/trap.svg")
            runs[name] = run.id
    experiment = ws.store.get_experiment("churn")
    return Site(experiment.id, runs)


def populate(ws: Workspace, folder: Path) -> Site:
    """Runs, a dataset, a registered model, a deployment with live figures, a
    monitoring record and an alert: something on every page."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    site = log_runs(ws)
    (folder / "data").mkdir()
    frame = pd.DataFrame({"age": [20 + i % 50 for i in range(200)],
                          "income": [1000.0 * (i % 7) for i in range(200)],
                          "region": ["north", "south", "east", "west"] * 50,
                          "target": [i % 2 for i in range(200)]})
    frame.to_csv(folder / "data" / "customers.csv", index=False)
    keel.data.add(folder / "data", "customers", "first cut", ws=ws)
    features = frame[["age", "income"]]
    model = LogisticRegression().fit(features, frame["target"])
    with keel.start_run(experiment="churn", name="trained", ws=ws) as run:
        run.use_dataset("customers@1")
        uri = run.log_model(model, "model", input_example=features[:5])
    site.runs["trained"] = run.id
    keel.models.register(uri, "churner", ws=ws)
    rollout.create("prod", "churner/1", ws=ws)
    latency = [0] * (len(EDGES_MS) + 1)
    latency[40] = 95
    latency[50] = 5
    ws.store.add_deployment_stats("prod", "worker-1", [
        VersionStats("churner/1", "stable", 100, 3, latency, {"0": 60, "1": 40})])
    result = {"drift": {"features": [
        {"feature": "age", "kind": "numeric", "method": "ks", "statistic": 0.31,
         "p_value": 0.001, "threshold": 0.05, "drifted": True,
         "distribution": {"labels": ["20-40", "40-70"], "reference": [0.6, 0.4],
                          "current": [0.2, 0.8]}}]},
        "figures": {"drift_share": 0.5, "drift.age": 0.31}, "notes": []}
    record = ws.store.add_monitor_record("deployment:prod", "customers@1", "prod, last 1h",
                                         0.5, True, result)
    ws.store.add_alert("deployment:prod", record.id, "drift_share > 0.3", 0.5,
                       "half the features drifted", "none")
    site.model, site.dataset, site.deployment, site.record_id = \
        "churner", "customers", "prod", record.id
    return site


def client(server: Server, role: str | None) -> httpx.Client:
    """A browser-like client: the token in the cookie, redirects not followed."""
    cookies = {"keel_token": server.secrets[role]} if role else {}
    return httpx.Client(base_url=server.url, cookies=cookies, timeout=30)


def rows(page: str, table: str) -> list[str]:
    """The run names listed in the runs table of an experiment page."""
    body = page.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<td class="name"><a href="/runs/[0-9a-f]+">([^<]+)</a>', body)


def test_signing_in_sets_a_strict_cookie_and_returns_to_the_page(server: Server) -> None:
    with client(server, None) as anonymous:
        sent = anonymous.get("/experiments/1")
        assert sent.status_code == 303
        assert sent.headers["location"] == "/login?next=/experiments/1"
        form = anonymous.get("/login", params={"next": "/experiments/1"})
        assert form.status_code == 200 and 'name="token"' in form.text
        assert 'value="/experiments/1"' in form.text

        bad = anonymous.post("/login", data={"token": "keel_wrong", "next": "/"})
        assert bad.status_code == 401
        assert "unknown, revoked or expired" in bad.text
        assert "set-cookie" not in bad.headers

        good = anonymous.post("/login", data={"token": server.secrets["viewer"],
                                              "next": "/experiments/1"})
        assert good.status_code == 303 and good.headers["location"] == "/experiments/1"
        cookie = good.headers["set-cookie"]
        assert cookie.startswith("keel_token=") and "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        home = anonymous.get("/")  # the client keeps the cookie, as a browser would
        assert home.status_code == 200 and "Experiments" in home.text
        assert "viewer" in home.text and 'href="/logout"' in home.text

        elsewhere = anonymous.post("/login", headers={"sec-fetch-site": "cross-site"},
                                   data={"token": server.secrets["admin"], "next": "/"})
        assert elsewhere.status_code == 403 and "set-cookie" not in elsewhere.headers

        out = anonymous.get("/logout")
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert 'keel_token=""' in out.headers["set-cookie"] or \
            "Max-Age=0" in out.headers["set-cookie"]


def test_login_never_redirects_off_the_server(server: Server) -> None:
    with client(server, None) as anonymous:
        for path in ("/static/keel.css", "/static/chart.umd.min.js", "/favicon.ico"):
            assert anonymous.get(path).status_code == 200, path  # the login page needs them
        for target in ("https://evil.example", "//evil.example/x", "/\\evil.example",
                       "http:/evil", "javascript:alert(1)", "/logout", "/\tevil"):
            form = anonymous.get("/login", params={"next": target})
            assert 'name="next" value="/"' in form.text, target
            done = anonymous.post("/login", data={"token": server.secrets["viewer"],
                                                  "next": target})
            assert done.status_code == 303 and done.headers["location"] == "/", target


def test_every_page_answers_a_viewer(server: Server, tmp_path: Path) -> None:
    site = populate(server.ws, tmp_path)
    fast = site.runs["fast"]
    pages = {
        "/": ["churn"],
        f"/experiments/{site.experiment_id}": ["fast", "slow", "wide", "metrics.auc"],
        f"/runs/{fast}": ["loss", "notes/readme.txt", 'src="/runs/', "keel.git",
                          'data-chart="m0"'],
        f"/compare?runs={fast},{site.runs['slow']}": ["fast", "slow", 'data-chart="m0"'],
        "/datasets": ["customers"],
        "/datasets/customers": ["first cut", "customers.csv", "age", 'data-chart="p0"'],
        "/models": ["churner"],
        "/models/churner": ["churner/1", "register", "customers@1", site.runs["trained"]],
        "/deployments": ["prod", "churner/1"],
        "/deployments/prod": ["churner/1", "stable", "100", 'data-chart="latency"'],
        "/monitoring": ["deployment:prod", "half the features drifted",
                        f'href="/monitoring/{site.record_id}"'],
        f"/monitoring/{site.record_id}": ["drift.age", "age", 'data-chart="f0"'],
    }
    with client(server, "viewer") as viewer:
        for path, expected in pages.items():
            page = viewer.get(path)
            assert page.status_code == 200, (path, page.text[:500])
            assert page.headers["content-type"].startswith("text/html")
            assert "script-src 'self'" in page.headers["content-security-policy"]
            for text in expected:
                assert text in page.text, (path, text)
            assert MARKUP not in page.text, path  # stored markup is shown as text
        run_page = viewer.get(f"/runs/{fast}").text
        assert "&lt;img src=x onerror=alert(1)&gt;" in run_page
        assert 'id="keel-charts"' in run_page and "<script>alert" not in run_page
        image = viewer.get(f"/runs/{fast}/artifacts/plots/dot.png")
        assert image.headers["content-type"] == "image/png" and image.content == png()
        trap = viewer.get(f"/runs/{fast}/artifacts/plots/trap.svg")
        assert "sandbox" in trap.headers["content-security-policy"]
        for name in ("chart.umd.min.js", "keel.js", "keel.css"):
            assert viewer.get(f"/static/{name}").status_code == 200


def test_runs_table_filters_sorts_chooses_columns_and_pages(server: Server) -> None:
    site = log_runs(server.ws)
    here = f"/experiments/{site.experiment_id}"
    with client(server, "viewer") as viewer:
        narrowed = viewer.get(here, params={"filter": "metrics.auc > 0.9 and params.lr = '0.1'"})
        assert narrowed.status_code == 200 and rows(narrowed.text, "runs") == ["fast"]

        bad = viewer.get(here, params={"filter": "metrics.auc >"})
        assert bad.status_code == 400
        assert "bad filter at position" in bad.text and 'role="alert"' in bad.text

        ascending = viewer.get(here, params={"order": "metrics.`auc` ASC"}).text
        assert rows(ascending, "runs") == ["wide", "slow", "fast"]
        assert 'class="asc"' in ascending
        # the header link sorts the other way
        assert quote("metrics.`auc` DESC").replace("%20", "+") in ascending or \
            "metrics.%60auc%60+DESC" in ascending

        only_lr = viewer.get(here, params={"cols": "1", "col": "params.lr"}).text
        header = only_lr.split("<thead>", 1)[1].split("</thead>", 1)[0]
        assert "params.lr" in header and "metrics.auc" not in header

        first = viewer.get(here, params={"limit": "2", "order": "metrics.`auc` DESC"}).text
        assert rows(first, "runs") == ["fast", "slow"] and 'id="next-page"' in first
        second = viewer.get(here, params={"limit": "2", "offset": "2",
                                          "order": "metrics.`auc` DESC"}).text
        assert rows(second, "runs") == ["wide"] and 'id="next-page"' not in second
        assert 'rel="prev"' in second
        assert rows(viewer.get("/experiments/churn").text, "runs") == ["wide", "slow", "fast"]


def test_run_counts_stop_at_the_cap(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    site = log_runs(server.ws)
    assert run_count(server.ws.store, site.experiment_id) == "3"
    monkeypatch.setattr(runs, "COUNT_CAP", 2)  # more runs than the cap
    assert run_count(server.ws.store, site.experiment_id) == "2+"
    monkeypatch.setattr(runs, "COUNT_CAP", 3)  # exactly the cap: still exact
    assert run_count(server.ws.store, site.experiment_id) == "3"
    empty = server.ws.store.create_experiment("empty")
    assert run_count(server.ws.store, empty.id) == "0"
    with client(server, "viewer") as viewer:
        listed = viewer.get("/").text
    assert re.search(r'>churn</a></td>\s*<td class="num">1</td>\s*<td class="num">3</td>', listed)


def test_only_admins_promote(server: Server, tmp_path: Path) -> None:
    populate(server.ws, tmp_path)
    for role in ("viewer", "editor", "validator"):
        with client(server, role) as person:
            assert 'id="promote"' not in person.get("/models/churner").text
            refused = person.post("/ui/models/churner/promote",
                                  data={"version": "1", "alias": "champion"})
            assert refused.status_code == 403, role
    assert server.ws.store.get_registered_model("churner").aliases == {}

    with client(server, "admin") as admin:
        page = admin.get("/models/churner").text
        assert 'id="promote"' in page and 'action="/ui/models/churner/promote"' in page
        forged = admin.post("/ui/models/churner/promote", headers={"sec-fetch-site": "cross-site"},
                            data={"version": "1", "alias": "champion"})
        assert forged.status_code == 403
        done = admin.post("/ui/models/churner/promote",
                          data={"version": "1", "alias": "champion", "reason": "first"})
        assert done.status_code == 303
        assert admin.get(done.headers["location"]).text.count("@champion") >= 1
        assert server.ws.store.get_registered_model("churner").aliases == {"champion": 1}
        last = server.ws.store.model_history("churner")[-1]
        assert last.action == "promote" and "web UI, token" in last.reason

        (server.ws.root / "keel.toml").write_text('[gates.strict]\nrequire = ["auc >= 0.99"]\n')
        refused = admin.post("/ui/models/churner/promote",
                             data={"version": "1", "alias": "strict"})
        assert refused.status_code == 409
        assert "cannot become &#39;strict&#39;" in refused.text or \
            "cannot become 'strict'" in refused.text


def test_artifact_route_refuses_paths_leaving_the_run(server: Server) -> None:
    site = log_runs(server.ws)
    files = f"/runs/{site.runs['fast']}/artifacts/"
    with client(server, "viewer") as viewer:
        for path in ("%2e%2e/%2e%2e/.keel/keel.db", "..%2f..%2fkeel.db", "%2fetc%2fpasswd",
                     "notes/%2e%2e/%2e%2e/x", "notes%5c..%5c..%5cx"):
            answer = viewer.get(files + path)
            assert answer.status_code == 422, (path, answer.status_code)
            assert "escapes the run" in answer.text or "backslash" in answer.text
        assert viewer.get(files + "none.txt").status_code == 404
        assert viewer.get(files + "notes/readme.txt").status_code == 200
