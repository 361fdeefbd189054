"""The stat cache vouches for a file only while nothing about it moved, ctime included."""

from __future__ import annotations

import hashlib
import marshal
import os
import time
from pathlib import Path

from blake3 import blake3

from keel.blobs.statcache import TAG, StatCache, stat_key


def rewrite_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    """What ``cp -p`` or ``rsync -t`` leave behind: new bytes, old size and mtime."""
    before = path.stat()
    time.sleep(0.05)  # a later clock tick, so that ctime moves
    path.write_bytes(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size


def test_a_rewrite_with_size_and_mtime_put_back_is_not_vouched_for(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"aaaa")
    cache = StatCache(tmp_path / "cache")
    cache.remember([(str(path), stat_key(path.stat()), blake3(b"aaaa").hexdigest())])
    rewrite_keeping_size_and_mtime(path, b"bbbb")
    assert cache.lookup([(str(path), stat_key(path.stat()))]) == {}
    assert StatCache(tmp_path / "cache").lookup([(str(path), stat_key(path.stat()))]) == {}


def test_a_cache_written_in_the_old_format_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "data" / "sub" / "f"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"real")
    st = path.stat()
    group = str(path).rsplit("/", 2)[0]
    old_name = hashlib.blake2b(group.encode(), digest_size=12).hexdigest() + ".bin"
    folder = tmp_path / "cache"
    folder.mkdir()
    wrong = blake3(b"something else").hexdigest()
    old_key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)  # no ctime
    (folder / old_name).write_bytes(marshal.dumps({str(path): (old_key, wrong)}))
    cache = StatCache(folder)
    assert cache.lookup([(str(path), stat_key(st))]) == {}
    cache.remember([(str(path), stat_key(st), blake3(b"real").hexdigest())])
    assert not (folder / old_name).exists()  # replaced by a file named for this Python
    assert [p.name for p in folder.iterdir()] == [old_name.replace(".bin", f".{TAG}.bin")]


def test_the_file_name_names_the_python_and_marshal_versions(tmp_path: Path) -> None:
    import sys

    path = tmp_path / "f"
    path.write_bytes(b"x")
    StatCache(tmp_path / "c").remember([(str(path), stat_key(path.stat()), "0" * 64)])
    (written,) = (tmp_path / "c").iterdir()
    assert f"py{sys.version_info[0]}{sys.version_info[1]}" in written.name
    assert f"m{marshal.version}" in written.name
