"""A workspace whose blobs live in an S3 bucket (KEEL_BLOBS), against a real S3 API."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

import keel
import keel.data
import keel.models as km
from keel.gc import collect
from keel.tracking import session
from tests.models.fixtures import breast_cancer


@pytest.fixture
def s3_workspace(backend: str, s3_bucket: str, s3_endpoint: str, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "keel.toml").write_text(f'[blobs]\nendpoint_url = "{s3_endpoint}"\n')
    url = f"s3://{s3_bucket}/keel-blobs"
    monkeypatch.setenv("KEEL_BLOBS", url)
    session.reset()
    return url


def test_artifacts_datasets_and_models_round_trip_through_s3(s3_workspace: str,
                                                              tmp_path: Path) -> None:
    ws = session.workspace()
    assert ws.blobs.url == s3_workspace and not ws.blobs.local
    (tmp_path / "notes.txt").write_text("kept in S3\n")
    train, holdout = breast_cancer()
    X, y = train.drop(columns=["target", "region"]), train["target"]
    with keel.start_run(experiment="s3") as run:
        run.log_artifact(tmp_path / "notes.txt")
        uri = run.log_model(LogisticRegression(max_iter=3000).fit(X, y), input_example=X[:3])
    km.register(uri, "bc")
    data = tmp_path / "data"
    data.mkdir()
    for n in range(5):
        (data / f"part-{n}.bin").write_bytes(os.urandom(3000 + n))
    version = keel.data.add(data, "parts").version

    session.reset()  # a new process would see only what reached the bucket
    back = keel.download_artifacts(run.id, "notes.txt", tmp_path / "out")
    assert back.read_text() == "kept in S3\n"
    model = keel.load_model("models:/bc/1")
    assert len(model.predict(holdout.drop(columns=["target", "region"]))) == len(holdout)
    keel.data.checkout(version.ref, tmp_path / "restored")
    assert sorted(p.name for p in (tmp_path / "restored").iterdir()) == \
        [f"part-{n}.bin" for n in range(5)]


def test_gc_sweeps_an_s3_blob_store(s3_workspace: str, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("kept\n")
    (tmp_path / "b.txt").write_text("deleted with its run\n")
    with keel.start_run() as keep:
        keep.log_artifact(tmp_path / "a.txt")
    with keel.start_run() as gone:
        gone.log_artifact(tmp_path / "b.txt")
    doomed = next(a.digest for a in keel.list_artifacts(gone.id) if a.path == "b.txt")
    keel.delete_run(gone.id)
    ws = session.workspace()
    report = collect(ws, older_than_s=0, grace_s=0)
    assert report.purged_runs == [gone.id]
    assert [i.kind for i in report.sweeps[0].items] == ["blob"]
    assert not ws.blobs.exists(doomed)
    assert keel.download_artifacts(keep.id, "a.txt", tmp_path / "o").read_text() == "kept\n"
