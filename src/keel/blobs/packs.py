"""Every packed blob of a local store, found through the packs' indexes.

The indexes are read lazily: opening a workspace reads none, and the first
lookup of a digest reads them all (a lookup on a miss reads the ones written
since, by other processes). So a damaged pack can only affect a command that
looks for a blob, never one that does not need blobs.

A pack whose index is missing or damaged is looked at when the indexes are
read: a framed pack (``pack.py``) is scanned, every record verified, and its
index rewritten; a legacy pack cannot be scanned (it has no framing), so it
is remembered as damaged. Reading a blob that is found nowhere then raises
:class:`CorruptData` naming the damaged pack files, rather than a plain
:class:`NotFound` that would hide where the blob went.
"""

from __future__ import annotations

import os
import threading
from contextlib import suppress
from pathlib import Path

from keel.blobs.pack import PackWriter, is_framed, read_records
from keel.blobs.pack_index import INDEX_MAGIC, Located, decode_index, decode_legacy, write_index
from keel.errors import CorruptData


class PackIndex:
    """Every packed blob of a store: digest -> (pack name, offset, size)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.entries: dict[str, tuple[str, int, int]] = {}
        self.damaged: dict[str, str] = {}  # pack name -> why some of its blobs are unreachable
        self._seen: set[str] = set()  # packs whose records are in ``entries``
        self._loaded = False
        self._lock = threading.Lock()

    def contains(self, digest: str) -> bool:
        """True if a pack holds ``digest`` (the indexes are read on first use)."""
        if not self._loaded:
            with self._lock:
                if not self._loaded:  # another thread may have read them meanwhile
                    self._refresh()
        return digest in self.entries

    def locate(self, digest: str) -> tuple[str, int, int] | None:
        """Where a packed blob is: (pack name, offset, size), or None. The pack file
        is ``folder / f"{name}.pack"``; it may be gone if gc rewrote it since."""
        return self.entries.get(digest) if self.contains(digest) else None

    def located(self) -> dict[str, tuple[str, int, int]]:
        """Every packed digest -> (pack name, offset, size), the indexes read on first
        use; for lookups of many digests at once (not to be changed by the caller)."""
        self.contains("")
        return self.entries

    def pack_path(self, name: str) -> Path:
        """The file of pack ``name``."""
        return self.folder / f"{name}.pack"

    def digests(self) -> set[str]:
        """Every packed digest, including packs published since the last look."""
        self.refresh()
        return set(self.entries)

    def writer(self) -> PackWriter:
        """A new pack whose blobs become visible here when it is published."""
        return PackWriter(self.folder, self.add_pack)

    def add_pack(self, name: str, located: Located) -> None:
        """Make a just-published pack's blobs visible to lookups."""
        with self._lock:
            self._add(name, located)

    def refresh(self) -> None:
        """Read the indexes of packs not read yet (packs written by other processes)."""
        with self._lock:
            self._refresh()

    def _refresh(self) -> None:
        try:
            names = set(os.listdir(self.folder))
        except (FileNotFoundError, NotADirectoryError):
            names = set()
        for file in sorted(names):
            if not file.endswith(".pack"):  # NAME.pack.tmp: still being written
                continue
            name = file[:-len(".pack")]
            if name not in self._seen:
                self._load(name, f"{name}.idx" in names)
        self._loaded = True

    def read(self, digest: str) -> bytes | None:
        """The packed bytes of ``digest`` (unverified), or None if no pack holds it.

        :class:`CorruptData` naming the pack files instead of None when a damaged
        pack may have held it.
        """
        if not self.contains(digest):
            self.refresh()
        where = self.entries.get(digest)
        if where is None:
            if self.damaged:
                raise self._damage(digest)
            return None
        name, offset, size = where
        try:
            with open(self.folder / f"{name}.pack", "rb") as handle:
                return os.pread(handle.fileno(), size, offset)
        except FileNotFoundError:
            # `keel gc` may have rewritten the pack (its live blobs moved to a new
            # one, published before the old one went): look again, once.
            self.forget_missing()
            moved = self.entries.get(digest)
            if moved is not None and moved[0] != name:
                return self.read(digest)
            self.damaged[name] = "it was deleted after its index was read"
            raise self._damage(digest) from None
        except OSError as exc:  # unreadable since its index was read
            self.damaged[name] = f"it cannot be read ({exc.strerror})"
            raise self._damage(digest) from exc

    def forget_missing(self) -> None:
        """Forget packs that are gone (removed or rewritten by ``keel gc``) and read
        the indexes again. Rare, so simply all of them: a digest of a gone pack
        may also be in a pack read earlier, whose entry was not kept then."""
        with self._lock:
            if any(not (self.folder / f"{name}.pack").exists() for name in self._seen):
                self.entries = {}
                self._seen = set()
            self._refresh()

    def _add(self, name: str, located: Located) -> None:
        for digest, (offset, size) in located.items():
            self.entries.setdefault(digest, (name, offset, size))
        self._seen.add(name)

    def _load(self, name: str, has_index: bool) -> None:
        index = self.folder / f"{name}.idx"
        problem = "its index is missing"
        if has_index:
            try:
                data = index.read_bytes()
                legacy = not data.startswith(INDEX_MAGIC)
                located = decode_legacy(data) if legacy else decode_index(data)
            except OSError as exc:
                problem = f"its index cannot be read ({exc.strerror})"
            except ValueError as exc:
                problem = f"its index is damaged ({exc})"
            else:
                self._add(name, located)
                self.damaged.pop(name, None)  # its index was restored
                if legacy:  # marshal may not be readable by a later Python
                    _rewrite(index, located)
                return
        self._rebuild(name, problem)

    def _rebuild(self, name: str, problem: str) -> None:
        """Index a framed pack from its own records, or remember it as damaged."""
        pack = self.folder / f"{name}.pack"
        if not is_framed(pack):
            self.damaged[name] = (f"{problem}, and it was written by an older keel without "
                                  "record framing, so it cannot be rebuilt")
            return  # not seen: a restored index is read on the next refresh
        try:
            located, bad = read_records(pack)
        except OSError as exc:
            self.damaged[name] = f"{problem}, and the pack cannot be read ({exc.strerror})"
            return
        self._add(name, located)
        if bad:
            # Not rewritten: each process re-scans it and keeps reporting the damage.
            self.damaged[name] = f"{bad} of its records are damaged"
        else:
            self.damaged.pop(name, None)
            _rewrite(self.folder / f"{name}.idx", located)

    def _damage(self, digest: str) -> CorruptData:
        packs = ", ".join(f"{self.folder / name}.pack ({why})"
                          for name, why in sorted(self.damaged.items()))
        return CorruptData(f"blob {digest} is missing, and damaged pack files may have held "
                           f"it: {packs}",
                           hint="restore those files from a backup, or pull the data again "
                                "from a remote (`keel data pull`); blobs in other packs "
                                "are unaffected")


def _rewrite(index: Path, located: Located) -> None:
    """Replace an index with a fresh one; a read-only store keeps the old one."""
    with suppress(OSError):  # then only the next process's lookups pay for the rebuild again
        write_index(index, located)
