"""Projects: a token sees its project's experiments, runs and artifacts only, and
anything of another project answers exactly as if it did not exist."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import keel
import keel.data
from keel.entities import Run
from keel.server import tokens
from tests.conftest import run_keel
from tests.server.conftest import Server

API = "/api/2.0/mlflow"


@pytest.fixture
def teams(server: Server, tmp_path: Path) -> Iterator[dict[str, httpx.Client]]:
    """Clients of two projects: ``default`` (an editor) and ``churn`` (an editor),
    and a default-project run with an artifact, created through the Python API."""
    churn = tokens.create(server.ws, "editor", project="churn").secret
    with keel.start_run(experiment="shared", name="theirs", ws=server.ws) as run:
        run.log_metric("acc", 0.9)
        (tmp_path / "notes.txt").write_text("secret notes")
        run.log_artifact(tmp_path / "notes.txt")
    server.ws.experiment_cache.clear()
    out = {}
    for name, secret in (("default", server.secrets["editor"]), ("churn", churn)):
        out[name] = httpx.Client(base_url=server.url, timeout=30,
                                 headers={"Authorization": f"Bearer {secret}"})
    yield out
    for client in out.values():
        client.close()


def _default_run(server: Server) -> Run:
    return server.ws.store.search_runs(None)[0]


def test_each_project_sees_its_own_experiments_and_runs(server: Server,
                                                         teams: dict[str, httpx.Client]
                                                         ) -> None:
    churn, default = teams["churn"], teams["default"]
    created = churn.post(f"{API}/experiments/create", json={"name": "churn-model"})
    assert created.status_code == 200
    experiment_id = created.json()["experiment_id"]
    run = churn.post(f"{API}/runs/create", json={"experiment_id": experiment_id}).json()["run"]
    assert churn.post(f"{API}/runs/log-metric", json={
        "run_id": run["info"]["run_id"], "key": "auc", "value": 0.7, "timestamp": 1,
        "step": 0}).status_code == 200

    def names(client: httpx.Client) -> set[str]:
        found = client.post(f"{API}/experiments/search", json={}).json()["experiments"]
        return {e["name"] for e in found}

    assert "churn-model" in names(churn) and "shared" not in names(churn)
    assert "shared" in names(default) and "churn-model" not in names(default)
    mine = churn.post(f"{API}/runs/search", json={}).json()["runs"]
    assert [r["info"]["run_id"] for r in mine] == [run["info"]["run_id"]]
    theirs = default.post(f"{API}/runs/search", json={}).json()["runs"]
    assert run["info"]["run_id"] not in {r["info"]["run_id"] for r in theirs}
    # The store records the project; the CLI (the default project) sees every run,
    # and lists each experiment's project once there is more than one.
    assert server.ws.store.get_experiment("churn-model").project == "churn"
    listed = run_keel("experiments", "list", env={"COLUMNS": "200"})
    assert listed.returncode == 0, listed.stderr
    line = next(row for row in listed.stdout.splitlines() if "churn-model" in row)
    assert "project" in listed.stdout and "churn" in line.replace("churn-model", "")


def test_another_projects_ids_answer_as_missing_ones(server: Server,
                                                     teams: dict[str, httpx.Client]) -> None:
    churn = teams["churn"]
    run = _default_run(server)
    experiment = str(run.experiment_id)
    missing_run, missing_experiment = "f" * 32, "987654"
    pairs = [
        (f"{API}/runs/get?run_id={{}}", run.id, missing_run),
        (f"{API}/experiments/get?experiment_id={{}}", experiment, missing_experiment),
        (f"{API}/experiments/get-by-name?experiment_name={{}}", "shared", "nobody"),
        (f"{API}/metrics/get-history?run_id={{}}&metric_key=acc", run.id, missing_run),
        (f"/api/2.0/mlflow-artifacts/artifacts/{experiment}/{{}}/artifacts/notes.txt",
         run.id, missing_run),
    ]
    for template, theirs, missing in pairs:
        got, expected = churn.get(template.format(theirs)), churn.get(template.format(missing))
        assert got.status_code == expected.status_code == 404, template
        # Word for word the answer about an id that does not exist: nothing leaks.
        assert got.json() == {**expected.json(), "message": expected.json()["message"]
                              .replace(missing, theirs)}, template
        assert "secret notes" not in got.text


def test_another_projects_runs_cannot_be_written(server: Server,
                                                 teams: dict[str, httpx.Client]) -> None:
    churn = teams["churn"]
    run = _default_run(server)
    writes = [
        ("runs/log-metric", {"run_id": run.id, "key": "acc", "value": 0.0, "timestamp": 2,
                             "step": 1}),
        ("runs/log-batch", {"run_id": run.id, "params": [{"key": "p", "value": "x"}]}),
        ("runs/set-tag", {"run_id": run.id, "key": "t", "value": "x"}),
        ("runs/update", {"run_id": run.id, "status": "FAILED"}),
        ("runs/delete", {"run_id": run.id}),
        ("runs/create", {"experiment_id": str(run.experiment_id)}),
        ("experiments/delete", {"experiment_id": str(run.experiment_id)}),
    ]
    for path, body in writes:
        answer = churn.post(f"{API}/{path}", json=body)
        assert answer.status_code == 404, path
    upload = churn.put(f"/api/2.0/mlflow-artifacts/artifacts/{run.experiment_id}/{run.id}"
                       "/artifacts/planted.txt", content=b"x")
    assert upload.status_code == 404
    paths = [a.path for a in server.ws.store.list_artifacts(run.id)]
    after = server.ws.store.get_run(run.id)
    assert after == run  # nothing changed: metrics, params, tags, status, lifecycle
    assert "planted.txt" not in paths and "notes.txt" in paths
    assert server.ws.store.get_experiment(run.experiment_id).lifecycle == "active"


def test_mlflows_default_experiment_is_per_project(server: Server,
                                                   teams: dict[str, httpx.Client]) -> None:
    churn, default = teams["churn"], teams["default"]
    mine = churn.post(f"{API}/runs/create", json={}).json()["run"]
    theirs = default.post(f"{API}/runs/create", json={}).json()["run"]
    assert mine["info"]["experiment_id"] != theirs["info"]["experiment_id"]
    assert server.ws.store.get_experiment(int(mine["info"]["experiment_id"])).project \
        == "churn"
    assert churn.get(f"{API}/experiments/get?experiment_id=0").json()["experiment"][
        "experiment_id"] == mine["info"]["experiment_id"]


def test_the_web_ui_shows_a_project_its_own_pages_only(server: Server,
                                                       teams: dict[str, httpx.Client],
                                                       tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a.csv").write_text("x\n1\n")
    keel.data.add(folder, "customers", ws=server.ws)
    churn, default = teams["churn"], teams["default"]
    run = _default_run(server)
    assert "shared" in default.get("/").text and "shared" not in churn.get("/").text
    assert default.get(f"/runs/{run.id}").status_code == 200
    assert churn.get(f"/runs/{run.id}").status_code == 404
    assert churn.get(f"/runs/{run.id}/artifacts/notes.txt").status_code == 404
    assert churn.get(f"/experiments/{run.experiment_id}").status_code == 404
    assert churn.get(f"/compare?runs={run.id}").status_code == 404
    for page in ("/monitoring",):
        assert default.get(page).status_code in (200, 404), page
        answer = churn.get(page)
        assert answer.status_code == 404 and "customers" not in answer.text, page
    # Another project's dataset page reads as a missing one's, word for word.
    hidden, missing = churn.get("/datasets/customers"), churn.get("/datasets/never-made")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.text.replace("customers", "X") == missing.text.replace("never-made", "X")
    # The dataset, model and deployment lists show a project its own (none, for churn).
    for page in ("/datasets", "/models", "/deployments"):
        answer = churn.get(page)
        assert answer.status_code == 200 and "customers" not in answer.text, page
    assert "customers" in default.get("/datasets").text
    assert default.get("/datasets/customers").status_code == 200
