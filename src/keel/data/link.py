"""How checkout puts a blob's bytes in the working folder: copy, reflink, hardlink
or symlink (DVC's ``cache.type``).

- ``copy``: an independent file (the bytes written, or copied in the kernel).
- ``reflink``: an independent file sharing the blob's extents, copy-on-write
  (btrfs, xfs, bcachefs, ...): no space used, as safe as a copy.
- ``hardlink``: the blob's own inode under a second name.
- ``symlink``: a link to the blob's path.

Hardlinks and symlinks use no space, but the file in the working folder
*is* the store's blob, shared by every version holding those bytes. Such
files are therefore read-only (the blob's ``0o444``), checkout never
changes their mode (a ``chmod`` through a link would reach the blob), and
replacing one always writes a new file under a temporary name and renames
it, never into the old inode. To edit a linked file, replace it with a copy
(``keel data checkout NAME@N --link copy`` turns every linked file of the
version back into a copy), never ``chmod`` it: root ignores permission
bits, so only not writing into the blob keeps the store intact.

Blobs inside pack files (files under 1 MiB) cannot be linked, and neither
can a file whose version marks it executable (its mode is the blob's);
those are always copied.

The default is the fastest safe kind available: ``reflink`` where the
filesystem of the destination can clone from the blob store's, else
``copy``. Hardlinks and symlinks are only used when asked for.
"""

from __future__ import annotations

import errno
import os
import uuid
from contextlib import suppress
from typing import Literal

from keel.errors import InvalidInput

Link = Literal["copy", "reflink", "hardlink", "symlink"]
LINKS: tuple[Link, ...] = ("copy", "reflink", "hardlink", "symlink")
FICLONE = 0x40049409  # Linux ioctl: share extents between two files (as in keel.blobs.copy)
# errno values meaning "this filesystem (pair) cannot clone", not "something broke"
NO_REFLINK = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS,
              errno.EPERM, errno.EBADF}

_probed: dict[tuple[int, int], bool] = {}  # (store device, destination device) -> works


def check_link(link: str | None) -> Link | None:
    """``link`` if it is one of :data:`LINKS` (None: choose the default)."""
    if link is None or link in LINKS:
        return link
    raise InvalidInput(f"unknown link type {str(link)[:40]!r}",
                       hint="use one of: " + ", ".join(LINKS))


def linkable(mode: int) -> bool:
    """True if a file with permission bits ``mode`` may be a hard or symbolic link
    to its blob (a read-only ``0o444`` file): not if it must be executable."""
    return not mode & 0o111


def clone(source_fd: int, dest_fd: int) -> bool:
    """Make ``dest_fd`` (an empty file) share ``source_fd``'s extents; False if this
    filesystem cannot (the caller then copies)."""
    import fcntl

    try:
        fcntl.ioctl(dest_fd, FICLONE, source_fd)
    except OSError as exc:
        if exc.errno in NO_REFLINK:
            return False
        raise
    return True


def reflink_works(store_folder: str, dest_folder: str) -> bool:
    """True if files in ``dest_folder`` can be reflinked from ``store_folder``
    (both existing folders). Probed once per pair of devices, by cloning a
    one-byte temporary file into another (both removed at once)."""
    try:
        key = (os.stat(store_folder).st_dev, os.stat(dest_folder).st_dev)
    except OSError:
        return False
    if key not in _probed:
        _probed[key] = _probe(store_folder, dest_folder)
    return _probed[key]


def _probe(store_folder: str, dest_folder: str) -> bool:
    if os.name != "posix":
        return False
    tag = uuid.uuid4().hex[:12]
    source = os.path.join(store_folder, f".reflink-probe-{tag}")
    dest = os.path.join(dest_folder, f".keel-reflink-probe-{tag}")
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        src_fd = os.open(source, flags, 0o600)
    except OSError:
        return False  # a read-only store: it cannot be the source of a probe, so copy
    try:
        os.write(src_fd, b"k")  # some filesystems only clone non-empty files
        try:
            dst_fd = os.open(dest, flags, 0o600)
        except OSError:
            return False
        try:
            return clone(src_fd, dst_fd)
        except OSError:
            return False
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)
        for path in (source, dest):
            with suppress(OSError):
                os.unlink(path)
