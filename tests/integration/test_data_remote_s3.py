"""Push and pull dataset versions through a real S3 API (moto's server on loopback)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from blake3 import blake3

import keel.data
import keel.errors
from keel.errors import CorruptData, RemoteUnreachable
from keel.workspace import forget_workspaces, init_workspace


def digests_of(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): blake3(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def configure_remote(root: Path, url: str, endpoint: str) -> None:
    (root / "keel.toml").write_text(f'[remote]\nurl = "{url}"\nendpoint_url = "{endpoint}"\n')


def make_versions(root: Path) -> dict[str, str]:
    data = root / "data"
    (data / "nested").mkdir(parents=True)
    for n in range(20):
        (data / f"part-{n}.bin").write_bytes(os.urandom(2000 + n))
    (data / "nested" / "labels.csv").write_text("id,label\n1,a\n2,b\n")
    v1 = digests_of(data)
    keel.data.add(data, "transactions", "first")
    (data / "part-0.bin").write_bytes(b"changed")
    (data / "part-1.bin").unlink()
    keel.data.add(data, "transactions", "second")
    return v1


def test_round_trip_through_s3_restores_identical_bytes(
        s3_bucket: str, s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    origin = tmp_path / "origin"
    init_workspace(origin)
    configure_remote(origin, f"s3://{s3_bucket}/team", s3_endpoint)
    monkeypatch.chdir(origin)
    v1 = make_versions(origin)
    pushed = keel.data.push()
    assert pushed.versions == ("transactions@1", "transactions@2") and pushed.blobs_sent > 20
    assert keel.data.push().blobs_sent == 0  # nothing missing the second time

    forget_workspaces()
    shutil.rmtree(origin)  # the local workspace is gone
    clone = tmp_path / "clone"
    init_workspace(clone)
    configure_remote(clone, f"s3://{s3_bucket}/team", s3_endpoint)
    monkeypatch.chdir(clone)
    pulled = keel.data.pull()
    assert pulled.versions == ("transactions@1", "transactions@2")
    result = keel.data.checkout("transactions@1", clone / "restored")
    assert digests_of(result.dest) == v1


def test_interrupted_push_is_completed_by_the_next(
        s3_bucket: str, s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    # keel.data.push is also the name of the re-exported function; get the module.
    push_module = importlib.import_module("keel.data.push")

    init_workspace(tmp_path)
    configure_remote(tmp_path, f"s3://{s3_bucket}/p", s3_endpoint)
    make_versions(tmp_path)
    real_copy = push_module.copy_blob
    sent = []

    def flaky_copy(source, target, digest):  # type: ignore[no-untyped-def]
        if len(sent) >= 5:
            raise ConnectionError("network dropped")
        sent.append(digest)
        return real_copy(source, target, digest)

    monkeypatch.setattr(push_module, "copy_blob", flaky_copy)
    with pytest.raises(RemoteUnreachable, match="network dropped"):
        keel.data.push()
    monkeypatch.setattr(push_module, "copy_blob", real_copy)
    finished = keel.data.push()
    assert finished.blobs_present >= 5 and finished.blobs_sent > 0
    assert keel.data.push().blobs_sent == 0


def test_corrupted_blob_at_the_remote_is_refused_by_name(
        s3_bucket: str, s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    origin, clone = tmp_path / "origin", tmp_path / "clone"
    init_workspace(origin)
    configure_remote(origin, f"s3://{s3_bucket}/c", s3_endpoint)
    monkeypatch.chdir(origin)
    (origin / "data").mkdir()
    (origin / "data" / "precious.csv").write_text("a\n1\n")
    keel.data.add(origin / "data", "ds")
    keel.data.push()
    digest = blake3(b"a\n1\n").hexdigest()
    boto3.client("s3", endpoint_url=s3_endpoint).put_object(
        Bucket=s3_bucket, Key=f"c/blobs/{digest[:2]}/{digest[2:]}", Body=b"tampered")

    forget_workspaces()
    init_workspace(clone)
    configure_remote(clone, f"s3://{s3_bucket}/c", s3_endpoint)
    monkeypatch.chdir(clone)
    with pytest.raises(CorruptData, match=r"precious\.csv"):
        keel.data.pull()
    assert not (clone / ".keel" / "blobs" / digest[:2] / digest[2:]).exists()
    with pytest.raises(keel.errors.NotFound):  # no half-pulled version registered
        keel.data.get("ds@1")


def test_unreachable_remote_leaves_local_state_alone(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    init_workspace(tmp_path)
    # A closed port, and no retries, so the test fails fast.
    (tmp_path / "keel.toml").write_text(
        '[remote]\nurl = "s3://nowhere/x"\nendpoint_url = "http://127.0.0.1:9"\n'
        '[remote.config_kwargs]\nconnect_timeout = 1\nretries = { max_attempts = 1 }\n')
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_text("1")
    keel.data.add(tmp_path / "d", "ds")
    with pytest.raises(RemoteUnreachable, match="cannot reach remote s3://nowhere/x") as info:
        keel.data.push()
    assert "credentials" in (info.value.hint or "")
    assert keel.data.get("ds@1").files == 1
