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

Besides ``write`` (one file, atomically), the primitives ``checkout`` builds
its all-or-nothing staging from (``keel.data.staging``): create a file or a
link at its final name (only where nothing is) or at a temporary name
beside it, rename it over the final name, set an entry aside and put it
back. Folders this object created are listed in ``created_folders`` (absolute
paths, parents first), so that a rolled-back checkout can remove them again.
"""

from __future__ import annotations

import errno
import os
import shutil
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
        self.created_folders: list[str] = []  # made by this object, parents first

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
            if create and not self.root.is_dir():
                self._make_root()
            try:
                fd = os.open(self.root, _FOLDER_FLAGS)
            except FileNotFoundError:
                return None
        if len(self._open) >= OPEN_FOLDERS:
            self.close()
        self._open[rel] = fd
        return fd

    def _make_root(self) -> None:
        """Create the root and any missing parents, remembering which were made;
        an existing non-folder on the way is a :class:`Conflict` naming it."""
        missing = []
        current = self.root
        while not current.exists() and not current.is_symlink() and current != current.parent:
            missing.append(current)
            current = current.parent
        if not current.is_dir():
            raise Conflict(f"{current} is not a folder, so {self.root} cannot be created",
                           hint="choose another destination, or move it away")
        for folder in reversed(missing):
            with suppress(FileExistsError):
                folder.mkdir()
                self.created_folders.append(str(folder))

    def _open_child(self, parent: int, name: str, rel: str, create: bool) -> int | None:
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            if not create:
                return None
            try:
                os.mkdir(name, 0o777, dir_fd=parent)
                self.created_folders.append(self._path(rel))
            except FileExistsError:
                pass  # made meanwhile: checked below like any other
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


    # Primitives for staged writes (see the module docstring). ``rel`` is always a
    # file path under the root; ``name`` an entry of its folder.

    def new_file(self, rel: str, data: Fill | bytes | memoryview, mode: int, temp: bool
                 ) -> str:
        """Create the file ``rel`` (``temp``: under a temporary name beside it) holding
        ``data`` (bytes, or what a fill function writes), with permission bits
        ``mode & 0o777``; the name created. Never replaces anything: an entry at the
        name is :class:`FileExistsError`."""
        folder, _, name = rel.rpartition("/")
        made = f".{name}.keel-{uuid.uuid4().hex[:8]}" if temp else name
        parent = self.open_folder(folder)
        mode &= 0o777
        fd = os.open(made if parent is not None else f"{self._path(folder)}/{made}",
                     _NEW_FILE, mode, dir_fd=parent)
        try:
            if callable(data):
                data(fd)
            else:
                _write_all(fd, data)
            if fast_mode(mode) != mode:  # open() applied the umask: set the bits exactly
                os.fchmod(fd, mode)
        except BaseException:
            os.close(fd)
            self.unlink(folder, made)
            raise
        os.close(fd)
        return made

    def new_link(self, rel: str, target: str, hard: bool, temp: bool) -> str:
        """Create ``rel`` (or a temporary name beside it) as a hard link to the file
        ``target`` or a symbolic link to the path ``target``; the name created."""
        folder, _, name = rel.rpartition("/")
        made = f".{name}.keel-{uuid.uuid4().hex[:8]}" if temp else name
        parent = self.open_folder(folder)
        where = made if parent is not None else f"{self._path(folder)}/{made}"
        if hard:
            os.link(target, where, dst_dir_fd=parent, follow_symlinks=False)
        else:
            os.symlink(target, where, dir_fd=parent)
        return made

    def rename(self, folder: str, old: str, new: str) -> None:
        """Rename an entry of ``folder`` (replacing a file at ``new``)."""
        parent = self.open_folder(folder)
        if parent is None:
            os.replace(f"{self._path(folder)}/{old}", f"{self._path(folder)}/{new}")
        else:
            os.rename(old, new, src_dir_fd=parent, dst_dir_fd=parent)

    def unlink(self, folder: str, name: str) -> None:
        """Remove the file (or link) ``name`` of ``folder`` if it is there."""
        parent = self.open_folder(folder, create=False)
        with suppress(FileNotFoundError, NotADirectoryError):
            if parent is None:
                os.unlink(f"{self._path(folder)}/{name}")
            else:
                os.unlink(name, dir_fd=parent)

    def remove_tree(self, folder: str, name: str) -> None:
        """Remove the folder ``name`` of ``folder`` and everything in it, never
        following a symlink (for a folder this checkout set aside)."""
        parent = self.open_folder(folder, create=False)
        shutil.rmtree(name if parent is not None else f"{self._path(folder)}/{name}",
                      dir_fd=parent, ignore_errors=True)

    def remove_created_folders(self) -> None:
        """Remove the folders this object created, deepest first, where they are
        empty again (rolling back a checkout)."""
        self.close()  # their descriptors are stale after this
        # Longest first: a folder's path is longer than its parent's, whichever
        # writer thread made which.
        for path in sorted(self.created_folders, key=len, reverse=True):
            with suppress(OSError):
                os.rmdir(path)
        self.created_folders.clear()

    def is_folder(self, folder: str, name: str) -> bool:
        """True if ``name`` in ``folder`` is a real folder (not a link to one)."""
        parent = self.open_folder(folder, create=False)
        try:
            st = os.stat(name if parent is not None else f"{self._path(folder)}/{name}",
                         dir_fd=parent, follow_symlinks=False)
        except OSError:
            return False
        return stat.S_ISDIR(st.st_mode)

    def open_folder(self, folder: str, create: bool = True) -> int | None:
        """The open folder ``folder`` (checked: no symlink on the way), or None where
        the platform has no ``dir_fd`` calls (the path is checked instead)."""
        if _AT:
            fd = self._folder(folder, create)
            if fd is None:
                raise FileNotFoundError(errno.ENOENT, "no such folder", self._path(folder))
            return fd
        self._check_by_path(folder, create)
        return None

    def _path(self, folder: str) -> str:
        return f"{self.root}/{folder}" if folder else str(self.root)


_UMASK: int | None = None


def fast_mode(mode: int) -> int:
    """The permission bits ``open(..., mode)`` gives a new file under this process's
    umask: equal to ``mode`` when no ``fchmod`` is needed after it (saves one
    system call per file, ~40 ms per 20,000 files)."""
    global _UMASK
    if _UMASK is None:
        _UMASK = _read_umask()
    return mode & 0o777 & ~_UMASK


def _read_umask() -> int:
    """The umask, read without setting it (``os.umask`` would change it for every
    thread for a moment); 0o777 (always fchmod) where it cannot be read."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o777


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _unlink_quietly(name: str, folder: int) -> None:
    with suppress(FileNotFoundError):
        os.unlink(name, dir_fd=folder)
