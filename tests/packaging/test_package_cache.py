"""A cached package is the package its digest names (issue 9, item 5b).

``keel.load_model`` loads ``.keel/cache/models/<digest>/``; a folder there
holding another package (copied over it, or damaged) must not load under
the original's name.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keel.blobs import BlobStore
from keel.blobs.digest import hash_file
from keel.packaging import load_package, materialise_package, save_package
from keel.packaging.manifest import MANIFEST_FILE

X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})


def stored_package(tmp_path: Path, blobs: BlobStore, label: int) -> tuple[str, Path]:
    """A package whose model always predicts ``label``, in ``blobs``; its digest."""
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier(strategy="constant", constant=label).fit(X, [0, 1, 0, 1])
    folder = tmp_path / f"pkg{label}"
    save_package(model, folder, input_example=X)
    for path in folder.iterdir():
        blobs.put_file(path)
    return hash_file(folder / MANIFEST_FILE), folder


@pytest.fixture
def packages(tmp_path: Path) -> tuple[BlobStore, Path, str, Path]:
    blobs = BlobStore(tmp_path / "blobs")
    zero, _ = stored_package(tmp_path, blobs, 0)
    _one, one_folder = stored_package(tmp_path, blobs, 1)
    return blobs, tmp_path / "cache", zero, one_folder


def test_another_package_copied_into_the_cache_is_replaced(
        packages: tuple[BlobStore, Path, str, Path]) -> None:
    blobs, cache, zero, one_folder = packages
    folder = materialise_package(blobs, zero, cache)
    assert set(load_package(folder).predict(X)) == {0}
    for path in folder.iterdir():
        path.chmod(0o644)
    shutil.rmtree(folder)
    shutil.copytree(one_folder, folder)  # the other model, under the first one's digest
    folder = materialise_package(blobs, zero, cache)
    assert hash_file(folder / MANIFEST_FILE) == zero
    assert set(load_package(folder).predict(X)) == {0}
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # nothing left aside


def test_a_damaged_cached_manifest_is_replaced(
        packages: tuple[BlobStore, Path, str, Path]) -> None:
    blobs, cache, zero, _one = packages
    folder = materialise_package(blobs, zero, cache)
    (folder / MANIFEST_FILE).chmod(0o644)
    with open(folder / MANIFEST_FILE, "a") as handle:
        handle.write("# edited\n")
    folder = materialise_package(blobs, zero, cache)
    assert hash_file(folder / MANIFEST_FILE) == zero


def test_a_symlink_in_place_of_the_cached_package_is_replaced(
        packages: tuple[BlobStore, Path, str, Path]) -> None:
    blobs, cache, zero, one_folder = packages
    cache.mkdir()
    (cache / zero).symlink_to(one_folder, target_is_directory=True)
    folder = materialise_package(blobs, zero, cache)
    assert not folder.is_symlink() and hash_file(folder / MANIFEST_FILE) == zero
    assert (one_folder / MANIFEST_FILE).is_file()  # the link's target was left alone


def test_cached_package_files_are_read_only(
        packages: tuple[BlobStore, Path, str, Path]) -> None:
    blobs, cache, zero, _one = packages
    folder = materialise_package(blobs, zero, cache)
    files = list(folder.iterdir())
    assert files and all(p.stat().st_mode & 0o222 == 0 for p in files)
    assert np.array_equal(load_package(folder).predict(X), np.zeros(4))
    assert os.access(folder, os.W_OK)  # the folder itself stays removable
