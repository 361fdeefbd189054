"""Making bytes survive a power loss, not only a crash: fsync of files and folders.

A write that returned is in the kernel's page cache: it survives the process
being killed, but not the machine losing power. ``fsync`` on the file makes
its bytes durable; ``fsync`` on the folder makes a rename (or a new name in
it) durable. Publishing a file safely is therefore: write a temporary file,
fsync it, rename it into place, fsync the folder.

A leaf module: it imports nothing from keel.
"""

from __future__ import annotations

import os

PROCESS = "process"  # survives the process being killed (the kernel holds the bytes)
FSYNC = "fsync"      # also survives a power loss, at the cost of an fsync per flush
MODES = (PROCESS, FSYNC)


def fsync_fd(fd: int) -> None:
    """Flush one open file's bytes and metadata to the disk."""
    os.fsync(fd)


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a file (by path) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make the names in ``folder`` (a rename, a new file) durable.

    Some filesystems refuse fsync on a folder (EINVAL); there the rename is
    as durable as that filesystem can make it, so the error is ignored.
    """
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def publish(temp: str | os.PathLike[str], final: str | os.PathLike[str]) -> None:
    """Rename a fully written, fsynced ``temp`` to ``final`` and make the rename
    durable. The caller fsyncs ``temp`` first (it usually still holds it open)."""
    os.replace(temp, final)
    fsync_dir(os.path.dirname(os.path.abspath(final)))
