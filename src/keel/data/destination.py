"""A folder that checkout writes into without ever following a symlink under it.

A symlink inside the destination (``sub -> /etc``) must not carry a write
outside it. So every folder under the root is opened relative to its parent
with ``O_NOFOLLOW`` (a symlink there is refused with :class:`UnsafePath`,
naming it), files are created in those folders with ``O_EXCL | O_NOFOLLOW``
under a temporary name, and renamed over the final name: a symlink at the
final name is replaced, never written through. Working relative to open
folders also means a folder swapped for a symlink between a check and a
write is not followed. The root itself may be a symlink: the user chose it.

Folders are kept open while files are written into them (the manifest is
sorted, so files of one folder come together), at most ``OPEN_FOLDERS`` at
a time.
"""

from __future__ import annotations

import errno
import os
import stat
import uuid
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from types import TracebackType

from keel.errors import Conflict, UnsafePath

OPEN_FOLDERS = 64  # well under the usual limit of 1,024 open files per process
_AT = {os.open, os.mkdir, os.rename, os.unlink, os.stat} <= os.supports_dir_fd
_FOLDER_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NEW_FILE = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
             | getattr(os, "O_BINARY", 0))

Fill = Callable[[int], None]  # writes a file's bytes to an open descriptor


class Destination:
    """Writes and removes files under ``root`` (see the module docstring).

    Example: ``with Destination(Path("data")) as dest: dest.write("a/b.csv", fill, 0o644)``
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._open: dict[str, int] = {}  # folder relative to root ("" for root) -> fd

    def __enter__(self) -> Destination:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the folders kept open."""
        for fd in self._open.values():
            os.close(fd)
        self._open.clear()

    def write(self, rel: str, fill: Fill, mode: int) -> None:
        """Create or replace the file ``rel`` (a '/'-separated path under the root)
        with what ``fill`` writes, with permission bits ``mode & 0o777``."""
        folder, _, name = rel.rpartition("/")
        if not _AT:
            self._write_by_path(rel, fill, mode)
            return
        parent = self._folder(folder, create=True)
        assert parent is not None  # created
        temp = f".{name}.keel-{uuid.uuid4().hex[:8]}"
        fd = os.open(temp, _NEW_FILE, 0o600, dir_fd=parent)
        try:
            try:
                fill(fd)
                os.fchmod(fd, mode & 0o777)
            finally:
                os.close(fd)
            os.rename(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            _unlink_quietly(temp, parent)
            raise

    def remove(self, rel: str) -> None:
        """Delete the file ``rel`` if it is there (a symlink there is removed, not its
        target); a symlink among its folders is refused."""
        folder, _, name = rel.rpartition("/")
        if not _AT:
            self._check_by_path(folder, create=False)
            (self.root / rel).unlink(missing_ok=True)
            return
        parent = self._folder(folder, create=False)
        if parent is not None:
            _unlink_quietly(name, parent)

    def _folder(self, rel: str, create: bool) -> int | None:
        """An open descriptor of folder ``rel`` under the root, reached without following
        symlinks; None if it is missing and not ``create``."""
        if rel in self._open:
            return self._open[rel]
        if rel:
            above, _, name = rel.rpartition("/")
            parent = self._folder(above, create)
            if parent is None:
                return None
            fd = self._open_child(parent, name, rel, create)
            if fd is None:
                return None
        else:
            if create:
                self.root.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.root, _FOLDER_FLAGS)
            except FileNotFoundError:
                return None
        if len(self._open) >= OPEN_FOLDERS:
            self.close()
        self._open[rel] = fd
        return fd

    def _open_child(self, parent: int, name: str, rel: str, create: bool) -> int | None:
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            if not create:
                return None
            with suppress(FileExistsError):  # made meanwhile: checked below like any other
                os.mkdir(name, 0o777, dir_fd=parent)
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        self._refuse(st, rel)
        try:
            return os.open(name, _FOLDER_FLAGS | _NOFOLLOW, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # swapped for a link meanwhile
                raise self._link_error(rel) from exc
            raise

    def _refuse(self, st: os.stat_result, rel: str) -> None:
        if stat.S_ISLNK(st.st_mode):
            raise self._link_error(rel)
        if not stat.S_ISDIR(st.st_mode):
            raise Conflict(f"{self.root / rel} is a file where the version has a folder",
                           hint="move it away, or check out into an empty destination")

    def _link_error(self, rel: str) -> UnsafePath:
        return UnsafePath(f"{self.root / rel} is a symlink inside the destination {self.root}; "
                          "refusing to write through it",
                          hint="remove the link (or replace it with a real folder), or "
                               "check out into another destination")

    def _check_by_path(self, folder: str, create: bool) -> None:
        """The same checks by path, where the platform has no ``dir_fd`` (Windows)."""
        current = self.root
        if create:
            current.mkdir(parents=True, exist_ok=True)
        for part in folder.split("/") if folder else ():
            current = current / part
            try:
                self._refuse(os.lstat(current), str(current.relative_to(self.root)))
            except FileNotFoundError:
                if not create:
                    return
                current.mkdir()

    def _write_by_path(self, rel: str, fill: Fill, mode: int) -> None:
        self._check_by_path(rel.rpartition("/")[0], create=True)
        final = self.root / rel
        temp = final.with_name(f".{final.name}.keel-{uuid.uuid4().hex[:8]}")
        try:
            fd = os.open(temp, _NEW_FILE, 0o600)
            try:
                fill(fd)
            finally:
                os.close(fd)
            os.chmod(temp, mode & 0o777)
            os.replace(temp, final)
        finally:
            temp.unlink(missing_ok=True)


def _unlink_quietly(name: str, folder: int) -> None:
    with suppress(FileNotFoundError):
        os.unlink(name, dir_fd=folder)
