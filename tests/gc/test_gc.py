"""keel gc removes exactly what nothing live refers to, and everything live still verifies."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import keel
import keel.data
import keel.models as km
from keel.data.delete import delete as delete_dataset_version
from keel.errors import Conflict, NotFound
from keel.gc import collect
from keel.packaging import save_package
from keel.packaging.manifest import PackageManifest
from keel.tracking import session
from keel.workspace import Workspace, init_workspace
from tests.conftest import run_keel
from tests.models.fixtures import breast_cancer


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _package_digests(ws: Workspace, manifest_digest: str) -> set[str]:
    manifest = PackageManifest.from_yaml(ws.blobs.get_bytes(manifest_digest))
    return {manifest_digest, *(f.digest for f in manifest.files.values())}


@pytest.fixture
def lived_in(backend: str, tmp_path: Path) -> dict[str, object]:
    """A workspace with live and deleted runs, model versions and dataset versions;
    returns what the test needs to know, including the digests that must go."""
    ws = session.workspace()
    shared = _write(tmp_path / "shared.txt", b"used by a live and a deleted run\n")
    with keel.start_run(experiment="gc") as keep:
        keep.log_artifact(shared)
        keep.log_artifact(_write(tmp_path / "a.bin", os.urandom(3000)))
    with keel.start_run(experiment="gc") as gone:
        gone.log_artifact(shared)
        gone.log_artifact(_write(tmp_path / "b.bin", os.urandom(5000)))
    keel.delete_run(gone.id)
    garbage = {a.digest for a in keel.list_artifacts(gone.id) if a.path == "b.bin"}

    train, _ = breast_cancer()
    X, y = train.drop(columns=["target", "region"]), train["target"]
    with keel.start_run(experiment="gc") as trained:
        uri = trained.log_model(LogisticRegression(max_iter=3000).fit(X, y), input_example=X[:3])
    champion = km.register(uri, "bc")
    save_package(DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y),
                 tmp_path / "tree", input_example=X[:3])
    tree = km.register(str(tmp_path / "tree"), "bc")
    km.delete_version(tree.ref, reason="a worse model", ws=ws)
    garbage |= _package_digests(ws, tree.package_digest)

    data = tmp_path / "data"
    _write(data / "small.txt", b"first version\n")
    _write(data / "big.bin", os.urandom((1 << 20) + 10))  # over 1 MiB: a loose blob
    first = keel.data.add(data, "events").version
    for file in data.iterdir():
        file.unlink()
    _write(data / "other.txt", b"second version\n")
    _write(data / "huge.bin", os.urandom((1 << 20) + 20))
    second = keel.data.add(data, "events").version
    delete_dataset_version(second.ref)
    manifest = keel.data.load_manifest(ws, second)
    garbage |= {second.manifest_digest, *(e.digest for e in manifest.entries
                                          if e.path == "huge.bin")}
    # What live things use, found through the public API; a candidate they share
    # (the tree's requirements file may equal the champion's) is not garbage.
    live = {a.digest for r in (keep.id, trained.id) for a in keel.list_artifacts(r)}
    live |= _package_digests(ws, champion.package_digest)
    live |= {first.manifest_digest,
             *(e.digest for e in keel.data.load_manifest(ws, first).entries)}
    session.reset()
    return {"keep": keep.id, "gone": gone.id, "champion": champion.ref, "first": first.ref,
            "garbage": garbage - live, "packed_gone": manifest.by_path["other.txt"].digest}


def test_dry_run_lists_exactly_the_unreferenced_blobs_and_gc_removes_them(
        lived_in: dict[str, object], tmp_path: Path) -> None:
    result = run_keel("gc", "--dry-run", "--older-than", "0", "--grace", "0", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    store = report["stores"][0]
    loose = {"".join(Path(i["path"]).parts[-2:]) for i in store["items"] if i["kind"] == "blob"}
    assert loose == lived_in["garbage"]
    assert store["packs_removed"] == 1  # the deleted version's pack held only its blobs
    assert report["purged_runs"] == [lived_in["gone"]]
    assert report["purged_model_versions"] == ["bc/2"]
    assert report["purged_dataset_versions"] == ["events@2"]
    assert report["bytes"] > (1 << 20) and report["dry_run"] is True
    ws = session.workspace()
    assert all(ws.blobs.exists(d) for d in lived_in["garbage"])  # dry run: nothing gone

    done = run_keel("gc", "--older-than", "0", "--grace", "0")
    assert done.returncode == 0, done.stderr
    assert "freed" in done.stdout
    ws = session.workspace()
    assert not any(ws.blobs.exists(d) for d in lived_in["garbage"])
    assert not ws.blobs.exists(str(lived_in["packed_gone"]))
    with pytest.raises(NotFound):
        keel.get_run(str(lived_in["gone"]))

    # Everything live still loads and verifies.
    kept = keel.download_artifacts(str(lived_in["keep"]), dst=tmp_path / "out")
    assert (kept / "shared.txt").read_bytes() == b"used by a live and a deleted run\n"
    model = keel.load_model("models:/bc@latest")
    _train, holdout = breast_cancer()
    assert len(model.predict(holdout.drop(columns=["target", "region"]))) == len(holdout)
    keel.data.checkout(str(lived_in["first"]), tmp_path / "restored")
    assert (tmp_path / "restored" / "small.txt").read_bytes() == b"first version\n"
    from keel.gc import live_digests
    for digest in live_digests(ws).digests:
        ws.blobs.get_bytes(digest)  # re-hashed on read: every live blob is intact
    again = json.loads(run_keel("gc", "--older-than", "0", "--grace", "0", "--json").stdout)
    assert again["bytes"] == 0


def test_retention_keeps_recent_deletions(lived_in: dict[str, object]) -> None:
    report = collect(session.workspace(), grace_s=0)  # default retention: 30 days
    assert report.purged_runs == [] and report.purged_versions == []
    assert report.bytes == 0
    assert keel.get_run(str(lived_in["gone"])).lifecycle == "deleted"


def test_a_run_a_model_was_registered_from_is_never_purged(backend: str) -> None:
    train, _ = breast_cancer()
    X, y = train.drop(columns=["target", "region"]), train["target"]
    with keel.start_run() as run:
        uri = run.log_model(DecisionTreeClassifier(max_depth=1).fit(X, y), input_example=X[:2])
    km.register(uri, "tree")
    keel.delete_run(run.id)
    report = collect(session.workspace(), older_than_s=0, grace_s=0)
    assert report.kept_registered_runs == [run.id] and report.purged_runs == []
    assert keel.load_model("models:/tree/1").predict(X[:2]) is not None


def test_a_concurrent_writer_never_loses_its_blob(backend: str, tmp_path: Path) -> None:
    ws = session.workspace()
    with keel.start_run() as run:
        pass
    stored, go = threading.Event(), threading.Event()

    def writer() -> None:
        # As log_artifact does: the blob first, the row that refers to it after.
        from keel.entities import Artifact

        with ws.writing():
            digest = ws.blobs.put_bytes(b"written while gc runs")
            stored.set()
            go.wait(10)
            time.sleep(0.3)  # gc is waiting for the lease by now
            ws.store.add_artifact(run.id, Artifact("late.txt", digest, 21))

    thread = threading.Thread(target=writer)
    thread.start()
    stored.wait(10)
    go.set()
    report = collect(ws, older_than_s=0, grace_s=0)  # waits for the writer's lease
    thread.join(10)
    assert report.bytes == 0
    assert keel.download_artifacts(run.id, "late.txt", tmp_path).read_bytes() == \
        b"written while gc runs"


def test_gc_gives_up_clearly_when_a_write_lasts_too_long(backend: str) -> None:
    ws = session.workspace()
    with ws.writing(), pytest.raises(Conflict, match="still in progress"):
        collect(ws, lease_wait_s=0.2)


def test_unreferenced_blobs_younger_than_the_grace_period_stay(backend: str) -> None:
    ws = session.workspace()
    keel.create_experiment("x")
    digest = ws.blobs.put_bytes(b"stored by a writer on another machine, not recorded yet")
    report = collect(ws)  # grace 1 h
    assert ws.blobs.exists(digest) and report.sweeps[0].kept_young == 1
    collect(ws, grace_s=0)
    assert not ws.blobs.exists(digest)


def test_temporary_files_of_a_killed_writer_are_removed(backend: str) -> None:
    ws = session.workspace()
    keel.create_experiment("x")
    root = Path(ws.blobs.root)
    old = _write(root / ".tmp-3f2a", b"a data add killed mid-copy")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    young = _write(root / ".tmp-9b1c", b"a data add still copying")
    report = collect(ws)  # grace 1 h
    assert not old.exists() and young.exists()
    assert report.sweeps[0].count("temporary") == 1


def test_a_remote_keeps_what_its_records_need(backend: str, tmp_path: Path) -> None:
    data = _write(tmp_path / "d" / "a.txt", b"pushed\n").parent
    keel.data.add(data, "pushed")
    remote = tmp_path / "remote"
    keel.data.push(str(remote))
    orphan = _write(remote / "blobs" / "ab" / ("c" * 62), b"left by an interrupted push")
    report = collect(session.workspace(), grace_s=0, remote=str(remote))
    assert not orphan.exists()
    assert report.sweeps[1].count("blob") == 1
    # What is left on the remote still pulls, whole and verified, into a new workspace.
    fresh = init_workspace(tmp_path / "fresh")
    with Workspace.open(fresh, store=str(fresh / ".keel" / "keel.db"),
                        blobs=str(fresh / ".keel" / "blobs")) as other:
        pulled = keel.data.pull(str(remote), ws=other)
        assert pulled.versions == ("pushed@1",)
        keel.data.checkout("pushed@1", tmp_path / "back", ws=other)
    assert (tmp_path / "back" / "a.txt").read_bytes() == b"pushed\n"


def test_data_delete_and_restore_from_the_command_line(backend: str, tmp_path: Path) -> None:
    data = _write(tmp_path / "d" / "a.txt", b"one\n").parent
    keel.data.add(data, "d")
    _write(data / "a.txt", b"two\n")
    keel.data.add(data, "d")
    with keel.start_run() as run:
        run.use_dataset("d@1")
    refused = run_keel("data", "delete", "d@1")
    assert refused.returncode == 1 and "lineage of 1 run" in refused.stderr
    assert run_keel("data", "delete", "d@2").returncode == 0
    assert [v.ref for v in keel.data.log("d")] == ["d@1"]
    assert keel.data.get("d@latest").ref == "d@1"
    with pytest.raises(NotFound, match="d@2 is deleted"):
        keel.data.get("d@2")
    assert run_keel("data", "restore", "d@2").returncode == 0
    assert keel.data.get("d@latest").ref == "d@2"
