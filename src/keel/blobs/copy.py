"""Copy a file while hashing the bytes copied: one read of the source, no re-read.

Each chunk is read into a private buffer, hashed, and written from that same
buffer, so the digest names exactly the bytes written, whatever happens to
the source meanwhile (the caller compares the source's stat key before and
after to notice a change, and tries again).

The copy is written with ``O_DIRECT`` where the filesystem allows it. On
the 2-core ext4 VM of bench/data.py, copying 1 GiB through the page cache
took 1.5-3.5 s right after the source had been written and flushed (the
state the benchmark and a fresh dataset are in): the kernel must find 1 GiB
of fresh pages. Straight to the disk it took 0.7-0.9 s, steadily, with
three 8 MiB writes in flight while the next chunk is read and hashed. A
filesystem that refuses ``O_DIRECT`` (tmpfs), or a write it rejects (a tail
not a multiple of the block size), gets ordinary writes instead.
"""

from __future__ import annotations

import errno
import mmap
import os
from io import FileIO

from blake3 import blake3

from keel.blobs.digest import hash_file
from keel.durability import fsync_fd

CHUNK = 8 * 1024 * 1024
IN_FLIGHT = 3  # writes queued at once; 1 took 1.1 s for 1 GiB, 3 took 0.7-0.8 s
DIRECT = getattr(os, "O_DIRECT", 0)  # Linux, FreeBSD; 0 elsewhere
POSIX = hasattr(os, "pwrite") and os.name == "posix"
FICLONE = 0x40049409  # Linux ioctl: share extents between two files (btrfs, xfs, ...)


def copy_hashing(source: str | os.PathLike[str], dest: str | os.PathLike[str]) -> str:
    """Copy ``source`` to a new file ``dest``; the BLAKE3 hex digest of what was written.

    A reflink where the filesystem has them (then the copy is hashed, which
    reads shared extents), else one pass: read, hash, write. ``dest`` is
    fsynced before this returns, so the caller may publish it with a rename.
    """
    if not POSIX:
        return _copy_plain(source, dest)
    import fcntl

    with open(source, "rb", buffering=0) as src:
        fd = _create(dest)
        try:
            try:
                fcntl.ioctl(fd, FICLONE, src.fileno())
                digest = None
            except OSError:
                digest = _stream(src, fd)  # no reflinks here: stream the bytes
            # O_DIRECT skips the page cache, but not the file's size and extents
            # or the disk's own cache: only fsync makes the copy durable.
            fsync_fd(fd)
        finally:
            os.close(fd)
    return digest if digest is not None else hash_file(dest)


def _copy_plain(source: str | os.PathLike[str], dest: str | os.PathLike[str]) -> str:
    """The same without threads, positional writes or O_DIRECT (Windows)."""
    hasher = blake3(max_threads=blake3.AUTO)
    with open(source, "rb") as src, open(dest, "xb") as dst:
        while chunk := src.read(CHUNK):
            hasher.update(chunk)
            dst.write(chunk)
        dst.flush()
        fsync_fd(dst.fileno())
    return str(hasher.hexdigest())


def _create(dest: str | os.PathLike[str]) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    if DIRECT:
        try:
            return os.open(dest, flags | DIRECT, 0o644)
        except OSError:
            pass  # the filesystem has no O_DIRECT (tmpfs, some FUSE mounts)
    return os.open(dest, flags, 0o644)


def _stream(src: FileIO, fd: int) -> str:
    # Here, not at the top: every command imports this module, few copy big files.
    from concurrent.futures import Future, ThreadPoolExecutor

    hasher = blake3(max_threads=blake3.AUTO)
    # mmap'd buffers are page-aligned, as O_DIRECT needs.
    buffers = [mmap.mmap(-1, CHUNK) for _ in range(IN_FLIGHT + 1)]
    pending: list[Future[None]] = []
    offset, turn = 0, 0
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        try:
            while True:
                if len(pending) >= IN_FLIGHT:  # the buffer read into next must be free
                    pending.pop(0).result()
                buffer = buffers[turn % len(buffers)]
                size = src.readinto(buffer)
                if not size:
                    break
                view = memoryview(buffer)[:size]
                hasher.update(view)  # before the write is queued: nothing changes it after
                pending.append(pool.submit(_write_all, fd, view, offset))
                offset += size
                turn += 1
        finally:
            for write in pending:
                write.result()
    return str(hasher.hexdigest())


def _write_all(fd: int, view: memoryview, offset: int) -> None:
    import fcntl

    done, fell_back = 0, False
    while done < len(view):
        try:
            done += os.pwrite(fd, view[done:], offset + done)
        except OSError as exc:
            if not DIRECT or fell_back or exc.errno != errno.EINVAL:
                raise
            # An unaligned tail, or a filesystem that takes O_DIRECT at open but
            # not in writes: carry on through the page cache (once per write).
            fell_back = True
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~DIRECT)
