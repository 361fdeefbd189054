"""Small blobs packed together: fewer files, same guarantees."""

from __future__ import annotations

import marshal
import os
from pathlib import Path

import pytest
from blake3 import blake3

import keel.data
from keel.blobs import BlobStore
from keel.blobs.pack import PACK_MAGIC, read_records
from keel.blobs.pack_index import INDEX_HEADER, INDEX_MAGIC, decode_index, encode_index
from keel.errors import CorruptData, NotFound
from tests.conftest import run_keel


def test_packed_blobs_read_back_verified(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    payloads = [os.urandom(4096) for _ in range(500)]
    with store.pack_writer() as pack:
        for data in payloads:
            pack.add(data, blake3(data).hexdigest())
    files = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    # One pack, its index and its checksum, not 500 files.
    assert sorted(p.suffix for p in files) == [".b3", ".idx", ".pack"]
    for data in payloads:
        assert store.get_bytes(blake3(data).hexdigest()) == data
    assert {blake3(d).hexdigest() for d in payloads} <= store.digests()


def test_another_process_sees_a_published_pack(tmp_path: Path) -> None:
    writer, reader = BlobStore(tmp_path / "b"), BlobStore(tmp_path / "b")
    data = b"shared bytes"
    digest = blake3(data).hexdigest()
    with writer.pack_writer() as pack:
        pack.add(data, digest)
    assert reader.get_bytes(digest) == data  # the reader loads new indexes on a miss


def test_unpublished_pack_is_invisible(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "b")
    digest = blake3(b"x").hexdigest()
    with pytest.raises(RuntimeError), store.pack_writer() as pack:
        pack.add(b"x", digest)
        raise RuntimeError("add failed half way")
    assert not store.exists(digest)
    with pytest.raises(NotFound):
        store.get_bytes(digest)
    assert not list((tmp_path / "b" / "packs").glob("*.pack"))


def test_corruption_inside_a_pack_is_detected(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "b")
    first, second = b"a" * 100, b"b" * 100
    with store.pack_writer() as pack:
        pack.add(first, blake3(first).hexdigest())
        pack.add(second, blake3(second).hexdigest())
    pack_file = next((tmp_path / "b" / "packs").glob("*.pack"))
    pack_file.chmod(0o644)
    raw = bytearray(pack_file.read_bytes())
    raw[-50] ^= 0xFF  # flip a byte of the second blob (the last one in the pack)
    pack_file.write_bytes(bytes(raw))
    assert store.get_bytes(blake3(first).hexdigest()) == first
    with pytest.raises(CorruptData, match=blake3(second).hexdigest()):
        store.get_bytes(blake3(second).hexdigest())


# -- damaged and missing indexes (issue 9, item 1) --------------------------------------

def packed_store(root: Path, count: int = 20) -> tuple[BlobStore, list[bytes], Path]:
    """A store with ``count`` small blobs in one pack; the pack's index file."""
    store = BlobStore(root)
    payloads = [os.urandom(100 + n) for n in range(count)]
    with store.pack_writer() as pack:
        for data in payloads:
            pack.add(data, blake3(data).hexdigest())
    return store, payloads, next((root / "packs").glob("*.idx"))


def damage(path: Path, how: str) -> None:
    path.chmod(0o644)
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:37])
    elif how == "flipped":
        raw = bytearray(path.read_bytes())
        raw[-3] ^= 0xFF
        path.write_bytes(bytes(raw))
    else:
        path.unlink()


def test_opening_a_store_reads_no_pack_index(tmp_path: Path) -> None:
    _store, _payloads, index = packed_store(tmp_path / "b")
    damage(index, "truncated")
    (tmp_path / "b" / "packs" / "legacy.pack").write_bytes(b"raw bytes")
    (tmp_path / "b" / "packs" / "legacy.idx").write_bytes(b"\x00garbage")
    store = BlobStore(tmp_path / "b")  # used to raise in marshal.loads
    assert store.packs is not None and not store.packs.entries
    digest = store.put_bytes(b"loose")  # a lookup: now the indexes are read
    assert store.get_bytes(digest) == b"loose"


@pytest.mark.parametrize("how", ["truncated", "flipped", "missing"])
def test_a_damaged_or_missing_index_is_rebuilt_from_its_pack(tmp_path: Path, how: str) -> None:
    _store, payloads, index = packed_store(tmp_path / "b")
    before = index.read_bytes()
    damage(index, how)
    store = BlobStore(tmp_path / "b")
    for data in payloads:
        assert store.get_bytes(blake3(data).hexdigest()) == data
    assert index.read_bytes() == before  # rewritten, byte for byte what the writer wrote
    assert not store.packs.damaged  # type: ignore[union-attr]


def test_the_index_is_a_stable_checksummed_format_not_marshal(tmp_path: Path) -> None:
    _store, payloads, index = packed_store(tmp_path / "b", count=3)
    raw = index.read_bytes()
    assert raw.startswith(INDEX_MAGIC)
    with pytest.raises(ValueError):
        marshal.loads(raw)
    located = decode_index(raw)
    assert set(located) == {blake3(d).hexdigest() for d in payloads}
    assert encode_index(located) == raw
    for cut in (len(raw) - 1, INDEX_HEADER.size, 10):
        with pytest.raises(ValueError):
            decode_index(raw[:cut])
    flipped = bytearray(raw)
    flipped[INDEX_HEADER.size + 3 * 32] ^= 1  # the first offset: only the checksum can tell
    with pytest.raises(ValueError, match="checksum"):
        decode_index(bytes(flipped))


def test_packs_frame_each_record_with_its_digest_and_size(tmp_path: Path) -> None:
    _store, _payloads, index = packed_store(tmp_path / "b", count=3)
    pack = index.with_suffix(".pack")
    assert pack.read_bytes().startswith(PACK_MAGIC)
    located, damaged = read_records(pack)
    assert damaged == 0 and located == decode_index(index.read_bytes())
    assert not list((tmp_path / "b" / "packs").glob("*.tmp*"))


def test_a_damaged_record_is_left_out_of_a_rebuilt_index_and_named(tmp_path: Path) -> None:
    _store, payloads, index = packed_store(tmp_path / "b", count=3)
    damage(index, "missing")
    pack = index.with_suffix(".pack")
    damage(pack, "flipped")  # a byte of the last blob
    store = BlobStore(tmp_path / "b")
    assert store.get_bytes(blake3(payloads[0]).hexdigest()) == payloads[0]
    with pytest.raises(CorruptData, match=pack.name) as caught:
        store.get_bytes(blake3(payloads[-1]).hexdigest())
    assert "1 of its records are damaged" in caught.value.message


def legacy_pack(folder: Path, payloads: list[bytes]) -> Path:
    """A pack as keel wrote them before framing: raw bytes, a marshal index."""
    folder.mkdir(parents=True, exist_ok=True)
    offsets, raw = {}, b""
    for data in payloads:
        offsets[blake3(data).hexdigest()] = (len(raw), len(data))
        raw += data
    (folder / "old.pack").write_bytes(raw)
    (folder / "old.idx").write_bytes(marshal.dumps(offsets))
    return folder / "old.idx"


def test_a_legacy_pack_stays_readable_and_its_index_is_converted(tmp_path: Path) -> None:
    payloads = [os.urandom(300) for _ in range(5)]
    index = legacy_pack(tmp_path / "b" / "packs", payloads)
    store = BlobStore(tmp_path / "b")
    for data in payloads:
        assert store.get_bytes(blake3(data).hexdigest()) == data
    assert index.read_bytes().startswith(INDEX_MAGIC)  # marshal no longer needed
    again = BlobStore(tmp_path / "b")
    assert again.get_bytes(blake3(payloads[2]).hexdigest()) == payloads[2]


def test_a_legacy_pack_whose_index_is_damaged_is_named_only_when_needed(
        tmp_path: Path) -> None:
    payloads = [os.urandom(300) for _ in range(5)]
    index = legacy_pack(tmp_path / "b" / "packs", payloads)
    index.write_bytes(index.read_bytes()[:50])
    store = BlobStore(tmp_path / "b")
    loose = store.put_bytes(b"elsewhere")
    assert store.get_bytes(loose) == b"elsewhere"  # other blobs keep working
    wanted = blake3(payloads[0]).hexdigest()
    assert not store.exists(wanted)  # so `data add` stores it again
    with pytest.raises(CorruptData, match=r"old\.pack") as caught:
        store.get_bytes(wanted)
    assert "cannot be rebuilt" in caught.value.message and caught.value.hint
    store.put_bytes(payloads[0])  # stored again (as `data add` does): readable again
    assert store.get_bytes(wanted) == payloads[0]


def test_a_damaged_index_does_not_stop_commands(backend: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for n in range(30):
        (data / f"f{n}.bin").write_bytes(os.urandom(500))
    keel.data.add(data, "raw")
    index = next((tmp_path / ".keel" / "blobs" / "packs").glob("*.idx"))
    damage(index, "truncated")
    listed = run_keel("runs", "list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "Aborted" not in listed.stdout + listed.stderr
    checked = run_keel("data", "checkout", "raw@1", "restored")
    assert checked.returncode == 0, checked.stderr  # the index was rebuilt from the pack
    assert (tmp_path / "restored" / "f7.bin").read_bytes() == (data / "f7.bin").read_bytes()
    assert decode_index(index.read_bytes())


def test_a_pack_deleted_after_its_index_was_read_is_named(tmp_path: Path) -> None:
    store, payloads, index = packed_store(tmp_path / "b", count=2)
    index.with_suffix(".pack").unlink()
    with pytest.raises(CorruptData, match=r"\.pack \(it was deleted after its index was read"):
        store.get_bytes(blake3(payloads[0]).hexdigest())


@pytest.mark.parametrize("damage", ["missing", "wrong", "garbage"])
def test_a_lost_or_wrong_pack_checksum_only_means_blob_by_blob_checks(
        backend: str, tmp_path: Path, damage: str) -> None:
    """A checkout takes most of a pack: it checks the pack's stored BLAKE3 once;
    without a usable one it checks every blob, and corruption is named all the same."""
    data = tmp_path / "d"
    data.mkdir()
    for n in range(40):
        (data / f"{n}.txt").write_text(f"row {n}\n" * 50)
    keel.data.add(data, "raw")
    pack_file = next((tmp_path / ".keel" / "blobs" / "packs").glob("*.pack"))
    checksum = pack_file.with_suffix(".b3")
    assert checksum.read_text().strip() == blake3(pack_file.read_bytes()).hexdigest()
    checksum.chmod(0o644)
    if damage == "missing":
        checksum.unlink()
    else:
        checksum.write_text("0" * 64 if damage == "wrong" else "not a digest")
    keel.data.checkout("raw@1", tmp_path / "out")
    assert (tmp_path / "out" / "7.txt").read_text() == "row 7\n" * 50
    # Corrupt one blob's bytes inside the pack: found and named, checksum or not.
    victim = b"row 13\n" * 50
    raw = pack_file.read_bytes()
    pack_file.chmod(0o644)
    pack_file.write_bytes(raw.replace(victim, victim.replace(b"row", b"ROW"), 1))
    with pytest.raises(CorruptData, match=r"raw@1:13\.txt"):
        keel.data.checkout("raw@1", tmp_path / "again")
    assert not (tmp_path / "again").exists()


def test_gc_removes_a_packs_checksum_with_it(tmp_path: Path) -> None:
    from keel.blobs.sweep import execute, plan

    store = BlobStore(tmp_path / "b")
    data = b"soon garbage"
    with store.pack_writer() as pack:
        pack.add(data, blake3(data).hexdigest())
    folder = tmp_path / "b" / "packs"
    assert len(list(folder.glob("*.b3"))) == 1
    execute(store, plan(store, live=set(), grace_s=-1))
    assert list(folder.iterdir()) == []
