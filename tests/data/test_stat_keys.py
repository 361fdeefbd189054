"""``add`` and ``checkout`` see a same-size edit whose mtime was put back (issue 9, item 6).

Such an edit (``cp -p``, ``rsync -t``, ``touch -r``) keeps size and mtime
but moves ctime; ``status`` always saw it, and now the stat cache that
``add`` and ``checkout`` use does too.
"""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

import pytest

import keel.data
from keel.data import index
from keel.errors import Conflict
from keel.workspace import current_workspace


def rewrite_keeping_size_and_mtime(path: Path, text: str) -> None:
    before = path.stat()
    time.sleep(0.05)  # a later clock tick, so that ctime moves
    path.write_text(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size


def make_data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("id\n1\n")
    (data / "b.csv").write_text("id\n2\n")
    return data


def test_add_sees_the_edit(backend: str, tmp_path: Path) -> None:
    data = make_data(tmp_path)
    keel.data.add(data, "raw")
    rewrite_keeping_size_and_mtime(data / "a.csv", "id\n7\n")
    result = keel.data.add(data, "raw")
    assert result.created and result.version.ref == "raw@2"


def test_checkout_does_not_mistake_the_edit_for_the_stored_file(backend: str,
                                                                tmp_path: Path) -> None:
    data = make_data(tmp_path)
    keel.data.add(data, "raw")
    rewrite_keeping_size_and_mtime(data / "a.csv", "id\n7\n")
    with pytest.raises(Conflict, match=r"a\.csv"):
        keel.data.checkout("raw@1")  # a local edit: not silently kept, not overwritten
    assert (data / "a.csv").read_text() == "id\n7\n"
    assert keel.data.checkout("raw@1", force=True).written == ("a.csv",)
    assert (data / "a.csv").read_text() == "id\n1\n"


def test_status_agrees(backend: str, tmp_path: Path) -> None:
    data = make_data(tmp_path)
    keel.data.add(data, "raw")
    rewrite_keeping_size_and_mtime(data / "a.csv", "id\n7\n")
    assert keel.data.status("raw").modified == ("a.csv",)


def test_an_index_written_by_another_python_is_not_decoded(backend: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    data = make_data(tmp_path)
    keel.data.add(data, "raw")
    ws = current_workspace()
    root = str(data.resolve())
    manifest = keel.data.get("raw").manifest_digest
    assert index.load(ws, root, manifest) is not None
    path = index.index_file(ws, root)
    raw = bytearray(path.read_bytes())
    struct.pack_into("<H", raw, 8, index.PYTHON + 1)  # as if written by the next Python
    path.write_bytes(bytes(raw))
    assert index.load(ws, root, manifest) is None
    assert index.TAG in path.name
    assert not keel.data.status("raw").changed  # a full scan instead, which writes a new one
    assert index.load(ws, root, manifest) is not None
