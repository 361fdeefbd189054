"""The working-folder index: what a dataset folder looked like when its bytes were known.

Like git's index, one file per dataset working folder, in
``.keel/cache/index/``. It is tied to one manifest digest and records, for
every folder under the working folder, each entry's stat key (device, inode,
size, mtime and ctime in ns, mode). For files of the manifest, a recorded key means
"with this key, the file holds the manifest's bytes"; ``None`` means no key
vouches for that (the file is modified, missing, or not a file any more).

With it, ``status`` with nothing changed is one ``stat`` per entry and a
dict comparison per folder (folders are listed only when their own times
moved: see ``settled``): it reads neither the
manifest (~30 ms to verify and decode for 20,000 files) nor the stat cache
(~35 ms). On 20,000 files that took status from ~180 ms to ~70 ms.

Racy entries (git's term): file times have coarse ticks, so a file rewritten
with the same size within the tick it was read in keeps its stat key. A key
whose mtime or ctime is within ``RACY_NS`` of the moment the reading began
is stored with mtime -1; it never matches, and the next status re-hashes
that file (without the stat cache, which has no such guard) before trusting
a key for it. ctime is part of the key because programs can set mtime back
(``cp -p``, ``rsync -t``) but not ctime.

The file holds two ``marshal`` objects: the folders (needed by every
status) and the manifest's ``path -> digest`` map (only read when a folder
changed). marshal's format belongs to one Python version, so the header
and the file name carry the Python and marshal versions: an index written
by another Python is never decoded. Writes are atomic (temporary file, then
rename); a missing, damaged or foreign index only costs one slow status,
which writes a new one.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import stat
import struct
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from keel.blobs.statcache import Entry, Key
from keel.workspace import Workspace

FORMAT = 1
MAGIC = b"keelidx\x02"  # \x01: a header without the Python and marshal versions
HEADER = struct.Struct("<8sHHQ")  # magic, Python (major*100+minor), marshal, folders' length
PYTHON = sys.version_info[0] * 100 + sys.version_info[1]
TAG = f"py{PYTHON}-m{marshal.version}"  # in the file name: two Pythons keep one index each
# 100x the coarsest tick of Linux's own filesystems (ext4, xfs, btrfs stamp
# times from a clock that moves every jiffy: 4-10 ms), for a network
# filesystem's clock being a little behind ours. Coarser stamps (FAT's 2 s)
# are not covered, as they never were by the stat cache.
RACY_NS = 1_000_000_000
SKIPPED_DIRS = frozenset({".keel", ".git"})  # as in keel.data.scan

Folder = dict[str, "Entry | None"]  # entry name -> stat entry (None: nothing vouches for it)


@dataclass
class WorkIndex:
    """One working folder's index (see the module docstring)."""

    manifest: str  # the manifest digest the recorded files agree with
    root: str  # the working folder, resolved
    top: Entry | None  # the working folder's own entry (as recorded: see settled())
    dirs: dict[str, Folder]  # folder prefix ("", "sub/") -> its entries
    subdirs: dict[str, list[str]]  # folders to descend into while dirs[prefix] is unchanged
    added: dict[str, list[str]]  # files not in the manifest while dirs[prefix] is unchanged
    _digests: dict[str, str] | None = field(default=None, repr=False)
    _raw_digests: bytes | None = field(default=None, repr=False)

    @property
    def digests(self) -> dict[str, str]:
        """The manifest's ``path -> digest`` (decoded on first use)."""
        if self._digests is None:
            self._digests = marshal.loads(self._raw_digests or marshal.dumps({}))
        return self._digests

    def to_bytes(self) -> bytes:
        head = marshal.dumps((FORMAT, self.manifest, self.root, self.top, self.dirs,
                              self.subdirs, self.added))
        tail = self._raw_digests if self._digests is None and self._raw_digests else \
            marshal.dumps(self.digests)
        return HEADER.pack(MAGIC, PYTHON, marshal.version, len(head)) + head + tail


def index_file(ws: Workspace, root: str) -> Path:
    """Where the index of the working folder ``root`` lives."""
    name = hashlib.blake2b(root.encode(), digest_size=12).hexdigest()
    return ws.folder / "cache" / "index" / f"{name}.{TAG}.bin"


def load(ws: Workspace, root: str, manifest: str) -> WorkIndex | None:
    """The index of ``root`` if it describes ``manifest``; None if absent, stale or damaged."""
    try:
        data = index_file(ws, root).read_bytes()
        magic, python, marshal_version, size = HEADER.unpack_from(data)
        if (magic, python, marshal_version) != (MAGIC, PYTHON, marshal.version):
            return None  # another format, or another Python's marshal: never decoded
        view = memoryview(data)
        head = marshal.loads(view[HEADER.size:HEADER.size + size])
        fmt, stored_manifest, stored_root, top, dirs, subdirs, added = head
    except (OSError, ValueError, EOFError, TypeError, struct.error):
        return None
    if fmt != FORMAT or stored_manifest != manifest or stored_root != root:
        return None
    return WorkIndex(manifest, root, top, dirs, subdirs, added,
                     _raw_digests=bytes(view[HEADER.size + size:]))


def save(ws: Workspace, index: WorkIndex) -> None:
    """Write the index atomically; a failure only costs the next status its speed."""
    target = index_file(ws, index.root)
    temp = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temp.write_bytes(index.to_bytes())
        os.replace(temp, target)
        # The file an index of the previous format had: it is never read again.
        target.with_name(target.name.split(".", 1)[0] + ".bin").unlink(missing_ok=True)
    except OSError:
        temp.unlink(missing_ok=True)


def trusted(key: Key, seen: Entry, racy_from: int) -> Entry:
    """The entry to record for a file just found to hold the manifest's bytes.

    ``key`` is the stat key seen while it was read, ``seen`` its entry from
    before the read (whose ctime is kept: any later change moves it).
    """
    racy = key[3] >= racy_from or seen[5] >= racy_from
    return (key[0], key[1], key[2], -1 if racy else key[3], seen[4], seen[5])


def settled(entry: Entry, racy_from: int) -> Entry:
    """A folder's entry as recorded. While a folder's mtime and ctime stay as
    recorded, no name in it was added, removed or renamed, and status stats
    the recorded names without listing the folder (~6 ms of ~65 ms for 100
    folders). Times too recent to prove that are recorded as mtime -1."""
    if entry[3] >= racy_from or entry[5] >= racy_from:
        return (entry[0], entry[1], entry[2], -1, entry[4], entry[5])
    return entry


def summarise(prefix: str, folder: Folder, digests: dict[str, str]
              ) -> tuple[list[str], list[str]]:
    """A folder's sub-folders to descend into and its files outside the manifest."""
    subs, added = [], []
    for name, entry in folder.items():
        if entry is None:
            continue
        if stat.S_ISDIR(entry[4]):
            if name not in SKIPPED_DIRS:
                subs.append(name)
        elif stat.S_ISREG(entry[4]) and prefix + name not in digests:
            added.append(prefix + name)
    return subs, added


def build(root: str, top: Entry | None, manifest: str, listing: dict[str, dict[str, Entry]],
          keys: dict[str, Key], stored: dict[str, str], current: dict[str, str],
          racy_from: int) -> WorkIndex:
    """An index from a full scan: the working folder's own entry ``top`` (taken
    before the scan), ``listing`` (see ``scan``), the stat ``keys`` the
    ``current`` digests belong to, and the manifest's ``stored`` digests.

    ``racy_from``: files and folders with times from then on are recorded as racy.
    """
    dirs: dict[str, Folder] = {}
    for prefix, entries in listing.items():
        folder: Folder = dict(entries)
        for name, entry in entries.items():
            rel = prefix + name
            if stat.S_ISDIR(entry[4]):
                folder[name] = settled(entry, racy_from)
            want = stored.get(rel)
            if want is None:
                continue
            if stat.S_ISREG(entry[4]) and current.get(rel) == want:
                folder[name] = trusted(keys.get(rel, entry), entry, racy_from)
            else:
                folder[name] = None  # modified, or no longer a file
        dirs[prefix] = folder
    for rel in stored.keys() - current.keys():  # removed files stay listed, unvouched
        prefix, _, name = rel.rpartition("/")
        dirs.setdefault(prefix + "/" if prefix else "", {})[name] = None
    index = WorkIndex(manifest, root, top and settled(top, racy_from), dirs, {}, {},
                      _digests=dict(stored))
    for prefix, folder in dirs.items():
        index.subdirs[prefix], index.added[prefix] = summarise(prefix, folder, stored)
    return index
