"""keel's own API (``/api/v1``) as its clients meet it: ``KEEL_STORE=http://...``
workspaces, tokens of each role and project, bad arguments, blobs in transit.
(The tracking, data and registry suites run whole against a server too: the
``server`` parameter of the ``backend`` fixture.)"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from blake3 import blake3

import keel
import keel.data
from keel.errors import AlreadyExists, Forbidden, InvalidInput, NotFound
from keel.server import store_api, tokens
from keel.store.http_store import HttpStore
from keel.workspace import init_workspace
from tests.conftest import run_keel
from tests.server.conftest import Server

OPENED: list[HttpStore] = []


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    """Close the HTTP clients a test opened (their sockets are otherwise left open)."""
    yield
    while OPENED:
        OPENED.pop().close()


def client(url: str, secret: str) -> HttpStore:
    OPENED.append(HttpStore(url, secret))
    return OPENED[-1]


def store(server: Server, role: str = "editor") -> HttpStore:
    return client(server.url, server.secrets[role])


def test_the_cli_and_python_api_work_against_a_server(server: Server, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    client = init_workspace(tmp_path / "laptop")
    monkeypatch.chdir(client)
    env = {"KEEL_STORE": server.url, "KEEL_TOKEN": server.secrets["editor"]}
    with monkeypatch.context() as patched:
        for key, value in env.items():
            patched.setenv(key, value)
        with keel.start_run(experiment="remote") as run:
            run.log_metric("loss", 0.25, step=3)
            run.log_text("hello", "notes/readme.txt")
        keel.tracking.session.reset()
    # Stored on the server's side, nothing on the client's.
    stored = server.ws.store.get_run(run.id)
    assert (stored.status, stored.metrics) == ("FINISHED", {"loss": 0.25})
    assert not (client / ".keel" / "keel.db").exists()
    shown = run_keel("runs", "show", run.id, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "loss" in shown.stdout and "notes/readme.txt" in shown.stdout
    (client / "data").mkdir()
    (client / "data" / "a.csv").write_text("x\n1\n")
    added = run_keel("data", "add", "data", "--name", "raw", env=env)
    assert added.returncode == 0, added.stderr
    assert server.ws.store.get_dataset_version("raw").files == 1
    out = run_keel("data", "checkout", "raw@1", str(client / "copy"), env=env)
    assert out.returncode == 0, out.stderr
    assert (client / "copy" / "a.csv").read_text() == "x\n1\n"


def test_errors_come_back_as_the_store_raised_them(server: Server) -> None:
    remote = store(server)
    with pytest.raises(NotFound) as over_http:
        remote.get_run("f" * 32)
    with pytest.raises(NotFound) as in_process:
        server.ws.store.get_run("f" * 32)
    assert (over_http.value.message, over_http.value.hint) == \
        (in_process.value.message, in_process.value.hint)


def test_roles_bound_what_a_token_may_call(server: Server) -> None:
    experiment = store(server).create_experiment("roles")
    run = store(server).create_run(experiment.id, "r", "me", 1)
    viewer = store(server, "viewer")
    assert viewer.get_run(run.id).id == run.id  # viewers read
    with pytest.raises(Forbidden, match=r"viewer token cannot .* it needs editor"):
        viewer.write_batch(run.id, [("p", "1")], [], [])
    with pytest.raises(Forbidden, match="needs admin"):
        store(server, "editor").set_model_alias("m", "champion", 1, "me", "why")
    assert server.ws.store.get_run(run.id).params == {}
    with pytest.raises(Forbidden, match="KEEL_TOKEN"):
        client(server.url, "keel_not-a-token").get_run(run.id)


def test_another_projects_runs_answer_as_missing_ones(server: Server) -> None:
    mine = store(server)
    experiment = mine.create_experiment("secret")
    run = mine.create_run(experiment.id, "r", "me", 1)
    theirs = client(server.url, tokens.create(server.ws, "admin", project="churn").secret)
    for call in (lambda: theirs.get_run(run.id), lambda: theirs.metric_history(run.id, "x"),
                 lambda: theirs.write_batch(run.id, [("p", "1")], [], []),
                 lambda: theirs.get_experiment(experiment.id)):
        with pytest.raises(NotFound):
            call()
    assert theirs.list_experiments() == []
    assert theirs.search_runs(None) == []
    assert theirs.list_datasets() == []
    assert theirs.list_deployments() == []
    with pytest.raises(NotFound, match="project 'churn' has no"):
        theirs.list_monitor_records()
    own = theirs.create_experiment("churn-exp")
    assert own.project == "churn" and [e.name for e in theirs.list_experiments()] == \
        ["churn-exp"]
    assert "churn-exp" not in [e.name for e in mine.list_experiments()]


@pytest.mark.parametrize(("method", "body", "words"), [
    ("get_run", {"run_id": 5}, "run_id"),
    ("get_run", {}, "run_id"),
    ("get_run", {"run_id": "x", "extra": 1}, "extra"),
    ("create_experiment", {"name": "../../etc"}, "bad experiment name"),
    ("create_experiment", {"name": "a\x1b[31m"}, "control character"),
    ("write_batch", {"run_id": "RUN", "params": [], "tags": [],
                     "metrics": [{"key": "a/../b", "value": 1, "step": 0, "timestamp": 0}]},
     "not a clean"),
    ("add_dataset_version", {"name": "d", "fields": {"id": 1, "manifest_digest": "0" * 64}},
     "not fields of a dataset version"),
    ("get_monitor_record", {"record_id": 2**70}, "64 bits"),
])
def test_bad_arguments_are_refused_naming_what_was_wrong(server: Server, method: str,
                                                        body: dict, words: str) -> None:
    experiment = server.ws.store.create_experiment("bad")
    run = server.ws.store.create_run(experiment.id, "r", "me", 1)
    if body.get("run_id") == "RUN":
        body = {**body, "run_id": run.id}
    answer = httpx.post(f"{server.url}/api/v1/store/{method}", json=body,
                        headers={"Authorization": f"Bearer {server.secrets['admin']}"})
    assert answer.status_code == 422, answer.text
    assert words in answer.json()["message"]
    assert server.ws.store.metric_keys(run.id) == []
    assert [e.name for e in server.ws.store.list_experiments()] == ["bad"]


def test_blobs_upload_only_under_their_own_digest(server: Server) -> None:
    auth = {"Authorization": f"Bearer {server.secrets['editor']}"}
    data = os.urandom(100_000)
    digest = blake3(data).hexdigest()
    wrong = blake3(b"something else").hexdigest()
    refused = httpx.put(f"{server.url}/api/v1/blobs/{wrong}", content=data, headers=auth)
    assert refused.status_code == 422 and "do not have the digest" in refused.json()["message"]
    assert not server.ws.blobs.exists(wrong)
    assert httpx.put(f"{server.url}/api/v1/blobs/{digest}", content=data,
                     headers=auth).status_code == 200
    assert server.ws.blobs.get_bytes(digest) == data
    back = httpx.get(f"{server.url}/api/v1/blobs/{digest}",
                     headers={"Authorization": f"Bearer {server.secrets['viewer']}"})
    assert back.content == data
    viewer_put = httpx.put(f"{server.url}/api/v1/blobs/{digest}", content=data,
                           headers={"Authorization": f"Bearer {server.secrets['viewer']}"})
    assert viewer_put.status_code == 403
    for bad in ("..%2F..%2Fetc%2Fpasswd", "0" * 63, "Z" * 64):
        answer = httpx.get(f"{server.url}/api/v1/blobs/{bad}", headers=auth)
        assert answer.status_code in (404, 422), (bad, answer.status_code)
        assert "root:" not in answer.text


def test_an_oversized_upload_is_refused_and_nothing_is_stored(
        server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_api, "MAX_UPLOAD_BYTES", 1000)
    data = os.urandom(5000)
    digest = blake3(data).hexdigest()
    answer = httpx.put(f"{server.url}/api/v1/blobs/{digest}", content=data,
                       headers={"Authorization": f"Bearer {server.secrets['editor']}"})
    assert answer.status_code == 413
    assert not server.ws.blobs.exists(digest)


def test_a_damaged_blob_is_refused_without_naming_the_servers_folders(server: Server) -> None:
    from keel.blobs.http_blobs import HttpBlobStore
    from keel.errors import CorruptData

    blobs = HttpBlobStore(server.url, server.secrets["editor"])
    data = os.urandom(2000)
    digest = blobs.put_bytes(data)
    path = Path(server.ws.blobs.path_of(digest))
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    with pytest.raises(CorruptData, match="corrupted on the server") as info:
        blobs.get_bytes(digest)
    blobs.close()
    assert str(server.ws.root) not in str(info.value)


def test_writes_are_audited_and_reads_are_not(server: Server) -> None:
    remote = store(server)
    experiment = remote.create_experiment("audited")
    remote.get_experiment(experiment.id)
    remote.list_experiments()
    paths = [entry["path"] for entry in server.ws.store.list_audit()]
    assert "/api/v1/store/create_experiment" in paths
    assert "/api/v1/store/get_experiment" not in paths
    assert "/api/v1/store/list_experiments" not in paths


def test_gc_through_a_server_says_where_to_run_it(server: Server) -> None:
    with pytest.raises(InvalidInput, match="garbage collection") as info:
        store(server).referenced_digests()
    assert "server's machine" in (info.value.hint or "")


def test_batched_blobs_are_all_checked_and_stored_all_or_nothing(server: Server) -> None:
    from keel.blobs import frames

    auth = {"Authorization": f"Bearer {server.secrets['editor']}"}
    good = [os.urandom(300) for _ in range(3)]
    items = [(blake3(data).hexdigest(), data) for data in good]
    lying = [*items[:2], (items[2][0], b"not those bytes")]
    refused = httpx.post(f"{server.url}/api/v1/blobs/pack",
                         content=b"".join(frames.encode(lying)), headers=auth)
    assert refused.status_code == 422, refused.text
    assert "do not have that digest" in refused.json()["message"]
    assert not any(server.ws.blobs.exists(d) for d, _ in items)
    cut = b"".join(frames.encode(items))[:-10]
    assert httpx.post(f"{server.url}/api/v1/blobs/pack", content=cut,
                      headers=auth).status_code == 422
    assert not any(server.ws.blobs.exists(d) for d, _ in items)
    sent = httpx.post(f"{server.url}/api/v1/blobs/pack",
                      content=b"".join(frames.encode(items)), headers=auth)
    assert sent.json() == {"received": 3, "stored": 3}
    back = httpx.post(f"{server.url}/api/v1/blobs/fetch",
                      json={"digests": [d for d, _ in items]}, headers=auth)
    assert frames.decode(back.content) == items
    absent = blake3(b"never stored").hexdigest()
    missing = httpx.post(f"{server.url}/api/v1/blobs/fetch", json={"digests": [absent]},
                         headers=auth)
    assert missing.status_code == 404 and absent in missing.json()["message"]


def test_a_data_add_through_a_server_packs_small_files_there(
        server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client_root = init_workspace(tmp_path / "laptop")
    monkeypatch.chdir(client_root)
    data = client_root / "data"
    data.mkdir()
    for i in range(300):
        (data / f"f{i}.txt").write_text(f"row {i}\n")
    env = {"KEEL_STORE": server.url, "KEEL_TOKEN": server.secrets["editor"]}
    assert run_keel("data", "add", "data", "--name", "many", env=env).returncode == 0
    version = server.ws.store.get_dataset_version("many")
    entries = keel.data.load_manifest(server.ws, version).entries
    packs = server.ws.blobs.packs
    assert packs is not None
    assert len(entries) == 300 and all(packs.contains(e.digest) for e in entries)
    out = run_keel("data", "checkout", "many@1", str(tmp_path / "copy"), env=env)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "copy" / "f7.txt").read_text() == "row 7\n"


def test_datasets_and_models_belong_to_the_project_that_made_them(
        server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    laptop = init_workspace(tmp_path / "laptop")
    monkeypatch.chdir(laptop)
    (laptop / "d").mkdir()
    (laptop / "d" / "a.csv").write_text("x\n1\n")
    churn_secret = tokens.create(server.ws, "admin", project="churn").secret
    default_env = {"KEEL_STORE": server.url, "KEEL_TOKEN": server.secrets["editor"]}
    churn_env = {**default_env, "KEEL_TOKEN": churn_secret}
    assert run_keel("data", "add", "d", "--name", "raw", env=default_env).returncode == 0
    # churn cannot add to, read or list the default project's dataset...
    taken = run_keel("data", "add", "d", "--name", "raw", env=churn_env)
    assert taken.returncode != 0 and "taken by another project" in taken.stderr
    hidden = run_keel("data", "log", "raw", env=churn_env)
    missing = run_keel("data", "log", "never-made", env=churn_env)
    assert hidden.returncode == missing.returncode != 0
    assert hidden.stderr.replace("raw", "X") == missing.stderr.replace("never-made", "X")
    # ...and makes its own, which the default project does not see.
    assert run_keel("data", "add", "d", "--name", "churn-data", env=churn_env).returncode == 0
    churn_list = run_keel("data", "list", env=churn_env).stdout
    default_list = run_keel("data", "list", env=default_env).stdout
    assert "churn-data" in churn_list and "raw" not in churn_list
    assert "raw" in default_list and "churn-data" not in default_list
    assert server.ws.store.name_project("dataset", "churn-data") == "churn"
    # Registered models likewise.
    theirs, mine = client(server.url, churn_secret), store(server)
    digest = blake3(b"package").hexdigest()
    theirs.create_model_version("churn-model", digest, "s", None, "me")
    assert [m.name for m in theirs.list_registered_models()] == ["churn-model"]
    assert mine.list_registered_models() == []
    with pytest.raises(NotFound) as other:
        mine.get_registered_model("churn-model")
    with pytest.raises(NotFound) as absent:
        mine.get_registered_model("no-such-model")
    assert other.value.message.replace("churn-model", "X") == \
        absent.value.message.replace("no-such-model", "X")
    with pytest.raises(AlreadyExists, match="taken by another project"):
        mine.create_model_version("churn-model", digest, "s", None, "me")
    assert [v.version for v in server.ws.store.list_model_versions("churn-model")] == [1]


def test_deployments_belong_to_the_project_that_made_them(server: Server) -> None:
    from keel.entities import VersionStats

    churn = client(server.url, tokens.create(server.ws, "admin", project="churn").secret)
    mine = client(server.url, server.secrets["admin"])
    server.ws.store.create_deployment("prod", {"routes": ["a"]}, "ann")  # the default's
    churn.create_deployment("churn-prod", {"routes": ["b"]}, "bo")
    assert [d.name for d in churn.list_deployments()] == ["churn-prod"]
    assert [d.name for d in mine.list_deployments()] == ["prod"]
    for call in (lambda s, n: s.get_deployment(n), lambda s, n: s.deployment_history(n),
                 lambda s, n: s.deployment_stats(n, 0)):
        with pytest.raises(NotFound) as hidden:
            call(churn, "prod")
        with pytest.raises(NotFound) as absent:
            call(churn, "never-made")
        assert hidden.value.message.replace("prod", "X") == \
            absent.value.message.replace("never-made", "X")
    with pytest.raises(NotFound):
        churn.add_deployment_stats("prod", "w1", [VersionStats(
            version="a", role="stable", requests=1, errors=0,
            latency=[0] * 9, predictions={})])
    with pytest.raises(AlreadyExists, match="taken by another project"):
        churn.create_deployment("prod", {"routes": ["c"]}, "bo")
    assert server.ws.store.get_deployment("prod").spec == {"routes": ["a"]}
