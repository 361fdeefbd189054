"""The real MLflow client against keel server: what it logs is a keel run."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import httpx

import keel
from tests.conftest import run_keel
from tests.server.conftest import Server

CLIENT = textwrap.dedent('''
    import json, os, sys, tempfile
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_experiment("churn")
    with mlflow.start_run(run_name="from-mlflow") as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_params({"depth": 4, "loss": "log"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"auc": 0.91, "f1": 0.8})
        mlflow.set_tag("team", "risk")
        folder = tempfile.mkdtemp()
        with open(os.path.join(folder, "notes.txt"), "w") as f:
            f.write("trained on march data")
        mlflow.log_artifact(os.path.join(folder, "notes.txt"))
        mlflow.log_artifact(os.path.join(folder, "notes.txt"), artifact_path="docs")
        run_id = run.info.run_id
    client = MlflowClient()
    got = client.get_run(run_id)
    history = client.get_metric_history(run_id, "loss")
    found = mlflow.search_runs(experiment_names=["churn"], filter_string="metrics.auc > 0.9",
                               order_by=["metrics.auc DESC"], output_format="list")
    none = mlflow.search_runs(experiment_names=["churn"], filter_string="metrics.auc > 0.95",
                              output_format="list")
    listed = sorted(a.path for a in client.list_artifacts(run_id))
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="docs/notes.txt")
    with mlflow.start_run(run_name="batch") as second:
        client.log_batch(second.info.run_id,
                         metrics=[mlflow.entities.Metric("m", float(i), 0, i) for i in range(1000)],
                         params=[mlflow.entities.Param(f"p{i}", str(i)) for i in range(100)])
    print(json.dumps({
        "run_id": run_id, "status": got.info.status, "params": got.data.params,
        "metrics": got.data.metrics, "tags": {k: v for k, v in got.data.tags.items()
                                              if not k.startswith("mlflow.")},
        "history": [(m.step, m.value) for m in history],
        "found": [r.info.run_id for r in found], "none": len(none), "listed": listed,
        "artifact": open(local).read(), "batch_run": second.info.run_id,
        "experiment": got.info.experiment_id}))
''')


def mlflow_client(python: Path, server: Server, secret: str, code: str = CLIENT
                  ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.url, "MLFLOW_TRACKING_TOKEN": secret,
           "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                          env=env, timeout=300, check=False)


def test_the_mlflow_client_logs_a_run_that_keel_shows(server: Server,
                                                      mlflow_python: Path) -> None:
    done = mlflow_client(mlflow_python, server, server.secrets["editor"])
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["status"] == "FINISHED"
    assert seen["params"] == {"lr": "0.1", "depth": "4", "loss": "log"}
    assert seen["metrics"] == {"loss": 0.2, "auc": 0.91, "f1": 0.8}
    assert seen["tags"] == {"team": "risk"}
    assert seen["history"] == [[s, 1.0 / (s + 1)] for s in range(5)]
    assert seen["found"] == [seen["run_id"]] and seen["none"] == 0
    assert seen["listed"] == ["docs", "notes.txt"]
    assert seen["artifact"] == "trained on march data"

    # The same run, as keel sees it.
    run = keel.get_run(seen["run_id"], ws=server.ws)
    assert run.experiment == "churn" and run.name == "from-mlflow"
    assert run.metrics["auc"] == 0.91 and run.params["depth"] == "4"
    assert sorted(a.path for a in keel.list_artifacts(run.id, ws=server.ws)) == [
        "docs/notes.txt", "notes.txt"]
    batch = keel.get_run(seen["batch_run"], ws=server.ws)
    assert len(batch.params) == 100
    assert len(keel.get_metric_history(batch.id, "m", ws=server.ws)) == 1000
    shown = run_keel("runs", "show", seen["run_id"], env={"COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert "from-mlflow" in shown.stdout and "auc" in shown.stdout and "0.91" in shown.stdout


def test_a_retried_batch_is_stored_once(server: Server) -> None:
    headers = {"Authorization": f"Bearer {server.secrets['editor']}"}
    with httpx.Client(base_url=server.url, headers=headers) as client:
        experiment = client.post("/api/2.0/mlflow/experiments/create",
                                 json={"name": "retries"}).json()["experiment_id"]
        run = client.post("/api/2.0/mlflow/runs/create",
                          json={"experiment_id": experiment}).json()["run"]["info"]["run_id"]
        batch = {"run_id": run, "metrics": [{"key": "loss", "value": 0.5, "timestamp": 1,
                                             "step": s} for s in range(10)],
                 "params": [{"key": "lr", "value": "0.1"}]}
        for _ in range(3):  # the client retries a batch whose answer it lost
            assert client.post("/api/2.0/mlflow/runs/log-batch", json=batch).status_code == 200
        history = client.get("/api/2.0/mlflow/metrics/get-history",
                             params={"run_id": run, "metric_key": "loss"}).json()["metrics"]
        assert len(history) == 10
        too_many = client.post("/api/2.0/mlflow/runs/log-batch", json={
            "run_id": run, "metrics": [{"key": "m", "value": 1, "timestamp": 1, "step": s}
                                       for s in range(1001)]})
        assert too_many.status_code == 400
        assert "at most 1000 metrics" in too_many.json()["message"]
        changed = client.post("/api/2.0/mlflow/runs/log-parameter",
                              json={"run_id": run, "key": "lr", "value": "0.2"})
        assert changed.status_code == 400
        assert changed.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_tokens_and_roles_are_enforced(server: Server) -> None:
    def call(secret: str | None, method: str, path: str, **kw: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.request(method, server.url + path, headers=headers, **kw)  # type: ignore

    assert call(None, "GET", "/health").status_code == 200
    missing = call(None, "GET", "/api/2.0/mlflow/experiments/get-by-name",
                   params={"experiment_name": "x"})
    assert missing.status_code == 401 and missing.json()["error_code"] == "UNAUTHENTICATED"
    assert call("keel_wrong", "POST", "/api/2.0/mlflow/experiments/search",
                json={}).status_code == 401
    viewer = server.secrets["viewer"]
    assert call(viewer, "POST", "/api/2.0/mlflow/experiments/search", json={}).status_code == 200
    refused = call(viewer, "POST", "/api/2.0/mlflow/experiments/create", json={"name": "x"})
    assert refused.status_code == 403 and refused.json()["error_code"] == "PERMISSION_DENIED"
    absent = call(viewer, "GET", "/api/2.0/mlflow/experiments/get-by-name",
                  params={"experiment_name": "nope"})
    assert absent.status_code == 404 and absent.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    # Revocation is immediate; every write is audited with its token.
    editor = server.secrets["editor"]
    assert call(editor, "POST", "/api/2.0/mlflow/experiments/create",
                json={"name": "audited"}).status_code == 200
    from keel.server import tokens

    tokens.revoke(server.ws, editor)
    assert call(editor, "POST", "/api/2.0/mlflow/experiments/create",
                json={"name": "late"}).status_code == 401
    audit = server.ws.store.list_audit()
    assert any(a["path"].endswith("experiments/create") and a["status"] == 200
               and a["token_id"] for a in audit)


def test_artifact_paths_cannot_escape_their_run(server: Server) -> None:
    headers = {"Authorization": f"Bearer {server.secrets['editor']}"}
    with httpx.Client(base_url=server.url, headers=headers) as client:
        experiment = client.post("/api/2.0/mlflow/experiments/create",
                                 json={"name": "paths"}).json()["experiment_id"]
        run = client.post("/api/2.0/mlflow/runs/create",
                          json={"experiment_id": experiment}).json()["run"]["info"]["run_id"]
        base = f"/api/2.0/mlflow-artifacts/artifacts/{experiment}/{run}/artifacts"
        assert client.put(f"{base}/ok.txt", content=b"fine").status_code == 200
        for bad in ("../../escape.txt", "..%2F..%2Fescape.txt", "%2E%2E/x.txt"):
            answer = client.put(f"{base}/{bad}", content=b"no")
            assert answer.status_code in (400, 404), (bad, answer.status_code)
        assert client.get(f"{base}/ok.txt").content == b"fine"
    assert [a.path for a in keel.list_artifacts(run, ws=server.ws)] == ["ok.txt"]


def test_the_command_line_creates_lists_and_revokes_tokens(tmp_path: Path) -> None:
    run_keel("init", ".")
    made = run_keel("token", "create", "--role", "viewer", "--expires", "30d")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("keel_")
    listed = run_keel("token", "list", env={"COLUMNS": "200"}).stdout
    assert "viewer" in listed and secret not in listed
    assert run_keel("token", "revoke", secret).returncode == 0
    assert "revoked" in run_keel("token", "revoke", secret).stdout
    bad = run_keel("token", "create", "--role", "owner")
    assert bad.returncode == 1 and "unknown role" in bad.stderr
    open_server = run_keel("server", "--no-auth", "--host", "0.0.0.0")
    assert open_server.returncode == 1 and "--no-auth on 0.0.0.0" in open_server.stderr


PROJECT_CLIENT = textwrap.dedent('''
    import json, sys
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    mlflow.set_experiment("fraud")
    with mlflow.start_run() as run:
        mlflow.log_metric("recall", 0.7)
    seen = mlflow.search_runs(search_all_experiments=True, output_format="list")
    try:
        MlflowClient().get_run(sys.argv[1])
        other = "visible"
    except MlflowException as exc:
        other = exc.error_code
    print(json.dumps({"run_id": run.info.run_id, "seen": [r.info.run_id for r in seen],
                      "other": other}))
''')


def test_an_mlflow_client_of_another_project_sees_its_own_runs_only(
        server: Server, mlflow_python: Path) -> None:
    from keel.server import tokens

    with keel.start_run(experiment="default-work", ws=server.ws) as theirs:
        theirs.log_metric("acc", 0.9)
    secret = tokens.create(server.ws, "editor", project="fraud-team").secret
    done = mlflow_client(mlflow_python, server, secret,
                         PROJECT_CLIENT.replace("sys.argv[1]", repr(theirs.id)))
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["seen"] == [seen["run_id"]]
    assert seen["other"] == "RESOURCE_DOES_NOT_EXIST"
    mine = keel.get_run(seen["run_id"], ws=server.ws)
    assert server.ws.store.get_experiment(mine.experiment_id).project == "fraud-team"


LOGGED_MODEL_CLIENT = textwrap.dedent('''
    import json
    import mlflow, mlflow.pyfunc
    import pandas as pd

    class Rows(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return [len(model_input)] * len(model_input)

    mlflow.set_experiment("with-models")
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="rows", python_model=Rows())
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    found = mlflow.search_logged_models(output_format="list")
    print(json.dumps({
        "model_id": info.model_id, "run_id": run.info.run_id,
        "predictions": [int(p) for p in loaded.predict(pd.DataFrame({"a": [1, 2, 3]}))],
        "status": str(mlflow.get_logged_model(info.model_id).status),
        "found": [m.model_id for m in found]}))
''')


def test_mlflow_3_logs_and_loads_a_model_through_keel(server: Server,
                                                      mlflow_python: Path) -> None:
    """``mlflow.pyfunc.log_model`` creates a logged model, uploads its files and
    finalizes it; ``load_model("models:/<id>")`` downloads and runs it."""
    done = mlflow_client(mlflow_python, server, server.secrets["editor"], LOGGED_MODEL_CLIENT)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["predictions"] == [3, 3, 3]
    assert seen["status"].endswith("READY") and seen["found"] == [seen["model_id"]]
    model = server.ws.store.get_logged_model(seen["model_id"])
    assert model.source_run_id == seen["run_id"] and model.name == "rows"
    files = {f.path for f in server.ws.store.logged_model_files(model.id)}
    assert "MLmodel" in files and "python_model.pkl" in files
    # The files are blobs gc keeps, and the run records the model as its output.
    from keel.gc.live import live_digests

    live = live_digests(server.ws).digests
    assert all(f.digest in live for f in server.ws.store.logged_model_files(model.id))
    assert f"keel.output.model.{model.id}" in keel.get_run(seen["run_id"], ws=server.ws).tags


def test_logged_models_are_scoped_and_checked(server: Server) -> None:
    from keel.server import tokens

    api = f"{server.url}/api/2.0/mlflow"
    editor = {"Authorization": f"Bearer {server.secrets['editor']}"}
    other = {"Authorization": "Bearer " + tokens.create(server.ws, "editor",
                                                        project="elsewhere").secret}
    experiment = httpx.post(f"{api}/experiments/create", json={"name": "m"},
                            headers=editor).json()["experiment_id"]
    created = httpx.post(f"{api}/logged-models", json={"experiment_id": experiment,
                                                       "name": "net"}, headers=editor)
    assert created.status_code == 200
    model_id = created.json()["model"]["info"]["model_id"]
    info = created.json()["model"]["info"]
    assert info["status"] == "LOGGED_MODEL_PENDING"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{experiment}/models/{model_id}/artifacts"
    upload = f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{experiment}/models/{model_id}"
    assert httpx.put(f"{upload}/artifacts/MLmodel", content=b"flavors: {}",
                     headers=editor).status_code == 200
    assert httpx.get(f"{upload}/artifacts/MLmodel", headers=editor).content == b"flavors: {}"
    # Another project: the model, its files and its uploads answer as missing.
    assert httpx.get(f"{api}/logged-models/{model_id}", headers=other).status_code == 404
    assert httpx.get(f"{upload}/artifacts/MLmodel", headers=other).status_code == 404
    assert httpx.put(f"{upload}/artifacts/planted", content=b"x",
                     headers=other).status_code == 404
    assert httpx.post(f"{api}/logged-models/search", json={},
                      headers=other).json()["models"] == []
    viewer = {"Authorization": f"Bearer {server.secrets['viewer']}"}
    assert [m["info"]["model_id"] for m in httpx.post(
        f"{api}/logged-models/search", json={}, headers=viewer).json()["models"]] == [model_id]
    assert httpx.patch(f"{api}/logged-models/{model_id}/tags", json={"tags": []},
                       headers=viewer).status_code == 403
    # Bad input: paths leaving the model, an unknown status, a filter not served.
    for path in ("../../1/x/artifacts/a", "artifacts/%2e%2e/escape", "artifacts/a/../../b"):
        assert httpx.put(f"{upload}/{path}", content=b"x",
                         headers=editor).status_code in (400, 404), path
    finalize = httpx.patch(f"{api}/logged-models/{model_id}", json={"status": "DONE"},
                           headers=editor)
    assert finalize.status_code == 400 and "LOGGED_MODEL_READY" in finalize.json()["message"]
    refused = httpx.post(f"{api}/logged-models/search",
                         json={"filter": "metrics.auc > 0.9"}, headers=editor)
    assert refused.status_code == 400 and "not served" in refused.json()["message"]
    by_name = {name: [m["info"]["model_id"] for m in httpx.post(
        f"{api}/logged-models/search", json={"filter": f"name = '{name}'"},
        headers=editor).json()["models"]] for name in ("net", "other")}
    assert by_name == {"net": [model_id], "other": []}
    assert httpx.patch(f"{api}/logged-models/{model_id}", json={
        "status": "LOGGED_MODEL_READY"}, headers=editor).json()["model"]["info"][
        "status"] == "LOGGED_MODEL_READY"
    assert {f.path for f in server.ws.store.logged_model_files(model_id)} == {"MLmodel"}


REGISTRY_CLIENT = textwrap.dedent('''
    import json
    import mlflow, mlflow.pyfunc
    import pandas as pd
    from mlflow import MlflowClient

    class Doubler(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return [2 * int(v) for v in model_input["a"]]

    mlflow.set_experiment("registered")
    with mlflow.start_run() as run:
        mlflow.pyfunc.log_model(name="doubler", python_model=Doubler())
    first = mlflow.register_model(f"runs:/{run.info.run_id}/doubler", "doubler")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="doubler", python_model=Doubler())
    second = mlflow.register_model(info.model_uri, "doubler")
    client = MlflowClient()
    client.set_registered_model_alias("doubler", "champion", first.version)
    rows = pd.DataFrame({"a": [1, 2, 3]})

    def predict(uri):
        return [int(p) for p in mlflow.pyfunc.load_model(uri).predict(rows)]

    print(json.dumps({
        "versions": [first.version, second.version],
        "by_version": predict("models:/doubler/1"),
        "by_alias": predict("models:/doubler@champion"),
        "latest": predict("models:/doubler/latest"),
        "alias_version": client.get_model_version_by_alias("doubler", "champion").version,
        "run_id": run.info.run_id}))
''')


def test_mlflow_registers_and_loads_models_by_version_alias_and_latest(
        server: Server, mlflow_python: Path) -> None:
    """``mlflow.register_model`` (from a run's model, and from ``models:/<id>``),
    an alias, and ``load_model("models:/name/1" | "@alias" | "/latest")``."""
    done = mlflow_client(mlflow_python, server, server.secrets["admin"], REGISTRY_CLIENT)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["versions"] == ["1", "2"]
    assert seen["by_version"] == seen["by_alias"] == seen["latest"] == [2, 4, 6]
    assert seen["alias_version"] == "1"
    stored = server.ws.store.mlflow_model_versions("doubler")
    assert [v.version for v in stored] == [1, 2]
    assert stored[0].run_id == seen["run_id"]
    # Each version is the logged model its client logged (from runs:/ and models:/).
    logged = [server.ws.store.get_logged_model(v.model_id or "") for v in stored]
    assert logged[0].source_run_id == seen["run_id"] and logged[1].id != logged[0].id
    assert server.ws.store.get_mlflow_model("doubler").aliases == {"champion": 1}


def test_the_mlflow_registry_is_scoped_and_guarded(server: Server) -> None:
    from keel.server import tokens

    api = f"{server.url}/api/2.0/mlflow"
    editor = {"Authorization": f"Bearer {server.secrets['editor']}"}
    other = {"Authorization": "Bearer " + tokens.create(server.ws, "admin",
                                                        project="elsewhere").secret}
    assert httpx.post(f"{api}/registered-models/create", json={"name": "m"},
                      headers=editor).status_code == 200
    again = httpx.post(f"{api}/registered-models/create", json={"name": "m"}, headers=editor)
    assert again.status_code == 400 and again.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    created = httpx.post(f"{api}/model-versions/create",
                         json={"name": "m", "source": "mlflow-artifacts:/1/x/artifacts/m"},
                         headers=editor)
    assert created.json()["model_version"]["version"] == "1"
    # Another project: the model answers as missing; its name is only "taken".
    missing = httpx.get(f"{api}/registered-models/get", params={"name": "nope"},
                        headers=other).json()
    assert httpx.get(f"{api}/registered-models/get", params={"name": "m"},
                     headers=other).json() == {**missing, "message": missing["message"]
                                               .replace("nope", "m")}
    assert httpx.post(f"{api}/model-versions/create", json={"name": "m", "source": "s"},
                      headers=other).status_code == 404
    assert httpx.get(f"{api}/registered-models/search", headers=other).json() == \
        {"registered_models": []}
    # Moving an alias is a promotion: an editor is refused, and nothing moves.
    refused = httpx.post(f"{api}/registered-models/alias",
                         json={"name": "m", "alias": "champion", "version": "1"},
                         headers=editor)
    assert refused.status_code == 403 and "needs admin" in refused.json()["message"]
    assert server.ws.store.get_mlflow_model("m").aliases == {}
    admin = {"Authorization": f"Bearer {server.secrets['admin']}"}
    for body, words in (({"name": "m", "alias": "latest", "version": "1"}, "reserved"),
                        ({"name": "m", "alias": "a", "version": "9"}, "not found"),
                        ({"name": "m", "alias": "a", "version": "x"}, "whole number")):
        bad = httpx.post(f"{api}/registered-models/alias", json=body, headers=admin)
        assert bad.status_code in (400, 404) and words in bad.json()["message"], bad.text
    assert httpx.post(f"{api}/registered-models/create", json={"name": "a\x1b[2J"},
                      headers=editor).status_code == 400
