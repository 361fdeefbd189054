"""The local cache of checked manifests: big versions load from it, and a damaged or
foreign cache file never changes what a version holds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import keel.data
from keel.data import manifest_cache
from keel.data.version import get_version, load_manifest
from keel.workspace import current_workspace


def big_folder(root: Path, count: int = manifest_cache.CACHED_FROM, salt: str = "") -> Path:
    for n in range(count):
        folder = root / f"f{n // 250}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{n}.txt").write_text(f"{salt}{n}")
    return root


def cache_files() -> list[Path]:
    folder = current_workspace().folder / "cache" / "manifests"
    return sorted(folder.glob("*.bin")) if folder.exists() else []


def test_a_big_version_is_decoded_once_then_loaded_from_the_cache(backend: str,
                                                                  tmp_path: Path) -> None:
    keel.data.add(big_folder(tmp_path / "d"), "big")
    ws = current_workspace()
    version = get_version(ws, "big")
    first = load_manifest(ws, version)
    assert [f.name.split(".")[0] for f in cache_files()] == [version.manifest_digest]
    assert load_manifest(ws, version) == first
    keel.data.checkout("big", tmp_path / "out")
    assert (tmp_path / "out" / "f3" / "999.txt").read_text() == "999"


def test_small_versions_are_not_cached(backend: str, tmp_path: Path) -> None:
    keel.data.add(big_folder(tmp_path / "d", count=10), "small")
    load_manifest(current_workspace(), get_version(current_workspace(), "small"))
    assert cache_files() == []


@pytest.mark.parametrize("damage", [b"", b"\x00garbage", b"\xe9" * 64])
def test_a_damaged_cache_file_is_ignored_and_replaced(backend: str, tmp_path: Path,
                                                      damage: bytes) -> None:
    keel.data.add(big_folder(tmp_path / "d"), "big")
    ws = current_workspace()
    version = get_version(ws, "big")
    expected = load_manifest(ws, version)
    [cached] = cache_files()
    cached.write_bytes(damage)
    assert load_manifest(ws, version) == expected  # decoded from the blob again
    assert cached.read_bytes() != damage  # and the cache rewritten
    keel.data.checkout("big", tmp_path / "out")
    assert len(list((tmp_path / "out").rglob("*.txt"))) == manifest_cache.CACHED_FROM


def test_only_the_most_recently_used_manifests_are_kept(backend: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manifest_cache, "KEEP", 2)
    ws = current_workspace()
    digests = []
    for n in range(3):
        keel.data.add(big_folder(tmp_path / f"d{n}", salt=str(n)), f"big{n}")
        version = get_version(ws, f"big{n}")
        load_manifest(ws, version)
        digests.append(version.manifest_digest)
        os.utime(cache_files()[0].parent / f"{version.manifest_digest}."
                 f"{manifest_cache.TAG}.bin", ns=(n * 10**9, n * 10**9))  # in this order
    assert {f.name.split(".")[0] for f in cache_files()} == set(digests[1:])
