"""Packages load without running their code: digests first, skops allow-list,
pickles only with trust=True. Each hostile package here would leave a marker
folder behind if anything in it executed."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import keel
import keel.models as km
from keel.blobs.digest import hash_file
from keel.errors import CorruptData, Forbidden, IncompatibleVersion, InvalidInput
from keel.packaging import load_package, save_package
from keel.packaging.manifest import MANIFEST_FILE, PackageFile, PackageManifest
from keel.packaging.signature import Signature
from keel.workspace import init_workspace


class Exploit:
    """Unpickling this calls os.mkdir(marker): proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def _hostile_package(folder: Path, flavor: str, model_file: str, payload: bytes) -> Path:
    folder.mkdir()
    (folder / model_file).write_bytes(payload)
    manifest = PackageManifest(
        flavor=flavor, model_file=model_file,
        signature=Signature.infer(pd.DataFrame({"x": [1.0]})).to_dict(),
        files={model_file: PackageFile(hash_file(folder / model_file), len(payload))})
    (folder / MANIFEST_FILE).write_text(manifest.to_yaml())
    return folder


def test_a_malicious_pickle_does_not_run_on_load(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    payload = pickle.dumps(Exploit(marker))
    package = _hostile_package(tmp_path / "evil", "python", "model.pkl", payload)
    with pytest.raises(Forbidden, match="runs code") as caught:
        load_package(package)
    assert "trust=True" in (caught.value.hint or "")
    assert not marker.exists()
    # The same through the registry: register it, load it by alias.
    init_workspace(tmp_path)
    km.register(str(package), "evil")
    km.set_alias("evil/1", "champion", reason="hostile")
    with pytest.raises(Forbidden):
        keel.load_model("models:/evil@champion")
    assert not marker.exists()
    # Proof that the payload is live: trusting it runs it.
    with pytest.raises(InvalidInput, match="no predict"):  # mkdir returns None, not a model
        load_package(package, trust=True)
    assert marker.is_dir()


def test_a_pickle_disguised_as_a_skops_file_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    package = _hostile_package(tmp_path / "evil", "sklearn", "model.skops",
                               pickle.dumps(Exploit(marker)))
    with pytest.raises(InvalidInput, match="not a readable skops file"):
        load_package(package)
    assert not marker.exists()


def test_a_skops_file_asking_for_untrusted_types_is_refused(tmp_path: Path) -> None:
    from sklearn.preprocessing import FunctionTransformer

    frame = pd.DataFrame({"x": [1.0, 2.0]})
    model = FunctionTransformer(func=os.system).fit(frame)
    save_package(model, tmp_path / "pkg", input_example=frame, flavor="sklearn")
    with pytest.raises(Forbidden, match="system"):
        load_package(tmp_path / "pkg")
    assert load_package(tmp_path / "pkg", trust=True).raw.func is os.system


def test_files_that_do_not_match_their_digests_refuse_to_load(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    save_package(LogisticRegression().fit(X, [0, 0, 1, 1]), tmp_path / "pkg", input_example=X)
    model_file = tmp_path / "pkg" / "model.skops"
    data = bytearray(model_file.read_bytes())
    data[-1] ^= 0xFF
    model_file.write_bytes(bytes(data))
    with pytest.raises(CorruptData, match=r"model\.skops does not match its recorded digest"):
        load_package(tmp_path / "pkg")


def test_a_corrupted_blob_in_the_store_refuses_to_load(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    init_workspace(tmp_path)
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    with keel.start_run() as run:
        uri = run.log_model(LogisticRegression().fit(X, [0, 0, 1, 1]), input_example=X)
    digest = next(a.digest for a in keel.list_artifacts(run.id)
                  if a.path == "model/model.skops")
    blob = tmp_path / ".keel" / "blobs" / digest[:2] / digest[2:]
    os.chmod(blob, 0o644)
    blob.write_bytes(blob.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(CorruptData, match="corrupted"):
        keel.load_model(uri)


def test_a_manifest_from_a_newer_keel_is_refused(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    save_package(LogisticRegression().fit(X, [0, 0, 1, 1]), tmp_path / "pkg", input_example=X)
    path = tmp_path / "pkg" / MANIFEST_FILE
    path.write_text(path.read_text().replace("format_version: 1", "format_version: 7"))
    with pytest.raises(IncompatibleVersion, match="model format 7") as caught:
        load_package(tmp_path / "pkg")
    assert "upgrade keel" in (caught.value.hint or "")


def test_a_manifest_listing_files_outside_the_package_is_refused(tmp_path: Path) -> None:
    package = _hostile_package(tmp_path / "evil", "sklearn", "model.skops", b"x")
    path = package / MANIFEST_FILE
    path.write_text(path.read_text().replace("  model.skops:", "  ../../etc/passwd:"))
    with pytest.raises(InvalidInput, match="outside the package"):
        load_package(package)


def test_python_models_load_only_when_trusted(tmp_path: Path) -> None:
    class Doubler:
        def predict(self, frame: pd.DataFrame) -> np.ndarray:
            return frame["x"].to_numpy() * 2

    frame = pd.DataFrame({"x": [1.0, 2.5]})
    save_package(Doubler(), tmp_path / "pkg", input_example=frame)
    with pytest.raises(Forbidden):
        load_package(tmp_path / "pkg")
    loaded = load_package(tmp_path / "pkg", trust=True)
    assert loaded.predict(frame).tolist() == [2.0, 5.0]
