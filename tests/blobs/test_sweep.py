"""Sweeping a blob store: mostly-dead packs are rewritten, readers keep finding live blobs."""

from __future__ import annotations

import os
from pathlib import Path

from keel.blobs import BlobStore
from keel.blobs.digest import hash_bytes
from keel.blobs.sweep import execute, plan


def _packed(store: BlobStore, blobs: list[bytes]) -> list[str]:
    digests = [hash_bytes(b) for b in blobs]
    with store.pack_writer() as pack:
        for data, digest in zip(blobs, digests, strict=True):
            pack.add(data, digest)
    return digests


def test_a_mostly_dead_pack_is_rewritten_with_only_its_live_blobs(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    blobs = [os.urandom(2000 + i) for i in range(10)]
    digests = _packed(store, blobs)
    reader = BlobStore(tmp_path / "blobs")  # another process that read the old index
    assert reader.get_bytes(digests[0]) == blobs[0]
    live = set(digests[:2])
    sweep = plan(store, live, grace_s=0)
    assert [item.kind for item in sweep.items] == ["repack"]
    assert sweep.dead_blobs == 8 and sweep.bytes == sum(len(b) for b in blobs[2:])
    old_pack = Path(sweep.items[0].path)
    execute(store, sweep)
    assert not old_pack.exists() and not old_pack.with_suffix(".idx").exists()
    fresh = BlobStore(tmp_path / "blobs")
    assert [fresh.get_bytes(d) for d in digests[:2]] == blobs[:2]
    assert not any(fresh.exists(d) for d in digests[2:])
    # The reader's index still names the removed pack: it looks again and finds the new one.
    assert reader.get_bytes(digests[1]) == blobs[1]
    packs = list((tmp_path / "blobs" / "packs").glob("*.pack"))
    assert len(packs) == 1 and packs[0].stat().st_size < 4200 + 100


def test_a_pack_mostly_live_is_left_alone(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    digests = _packed(store, [os.urandom(1000) for _ in range(4)])
    assert plan(store, set(digests[:3]), grace_s=0).items == []


def test_a_young_pack_waits_for_the_grace_period(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    _packed(store, [b"just written"])
    assert plan(store, set(), grace_s=3600).items == []
    assert [i.kind for i in plan(store, set(), grace_s=0).items] == ["pack"]


def test_an_unreadable_legacy_pack_is_never_touched(tmp_path: Path) -> None:
    folder = tmp_path / "blobs" / "packs"
    folder.mkdir(parents=True)
    (folder / "old.pack").write_bytes(b"raw bytes of a pack older than framing")
    (folder / "old.idx").write_bytes(b"\x00damaged")
    sweep = plan(BlobStore(tmp_path / "blobs"), set(), grace_s=0)
    assert sweep.items == [] and sweep.unreadable_packs == 1
