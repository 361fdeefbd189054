"""A checkout's writes, made whole or not at all.

Nothing the user had is lost or changed until every new file is on disk:

- a file where nothing was is created at its final name (one ``open`` per
  file, the common case of a fresh checkout: a temporary name and a rename
  cost ~30% more on ext4);
- a file that replaces one is written under a temporary name beside it and
  renamed over it only in :meth:`Staging.commit`;
- an entry in the way of the version's shape (a file where it has a folder,
  or a folder where it has a file) is renamed aside, and deleted only on
  commit;
- stale files are deleted only on commit.

If anything fails before the commit, :meth:`Staging.rollback` removes what
was created (files, temporary files, folders it made) and renames the
entries set aside back: the destination is as it was. The commit itself is
renames and unlinks in folders already opened and checked.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from contextlib import suppress

from keel.data.destination import Destination
from keel.errors import KeelError

Fill = Callable[[int], None]


class Staging:
    """Staged writes under one :class:`Destination` (see the module docstring).

    Example: ``with Staging(dest) as stage: stage.write("a.csv", data, 0o644, False)``,
    committed when the block ends without an error, rolled back otherwise.
    """

    def __init__(self, dest: Destination) -> None:
        self.dest = dest
        self._lock = threading.Lock()  # writer threads adopt their folders under it
        self._created: list[tuple[str, str]] = []  # (folder, name) made at the final name
        self._staged: list[tuple[str, str, str]] = []  # (folder, temp, final name)
        self._aside: list[tuple[str, str, str, bool]] = []  # (folder, aside, name, is folder)
        self._stale: list[tuple[str, str]] = []  # (folder, name) to delete on commit

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.rollback()

    def write(self, rel: str, data: Fill | bytes | memoryview, mode: int, replace: bool,
              into: Destination | None = None) -> None:
        """Stage the file ``rel``; ``replace`` if something is at that name now.
        ``into``: a writer thread's own :class:`Destination` on the same root
        (a Destination's open folders are not shared between threads)."""
        made = (into or self.dest).new_file(rel, data, mode, temp=replace)
        self._record(rel, made, replace)

    def link(self, rel: str, target: str, hard: bool, replace: bool,
             into: Destination | None = None) -> None:
        """Stage ``rel`` as a hard or symbolic link to ``target``."""
        made = (into or self.dest).new_link(rel, target, hard, temp=replace)
        self._record(rel, made, replace)

    @property
    def created_count(self) -> int:
        """Files created at their final names so far."""
        return len(self._created)

    def adopt_files(self, rels: list[str]) -> None:
        """Files another process created at their final names (a checkout's writer
        process, ``keel.data.writer_process``): a rollback removes them too."""
        with self._lock:
            for rel in rels:
                folder, _, name = rel.rpartition("/")
                self._created.append((folder, name))

    def adopt(self, other: Destination) -> None:
        """Take over the folders a writer thread's Destination created, so that a
        rollback removes them too."""
        with self._lock:
            self.dest.created_folders.extend(other.created_folders)
            other.created_folders.clear()

    def set_aside(self, rel: str) -> None:
        """Move the entry ``rel`` (a file, link or folder) out of the way now; it is
        deleted on commit and put back on rollback."""
        folder, _, name = rel.rpartition("/")
        is_folder = self.dest.is_folder(folder, name)
        aside = f".{name}.keel-aside-{uuid.uuid4().hex[:8]}"
        self.dest.rename(folder, name, aside)
        self._aside.append((folder, aside, name, is_folder))

    def remove(self, rel: str) -> None:
        """Delete the file ``rel`` on commit. Its folder is opened (and checked: no
        symlink on the way) now, so that a refusal comes before anything changed."""
        folder, _, name = rel.rpartition("/")
        try:
            self.dest.open_folder(folder, create=False)
        except FileNotFoundError:
            return  # its folder is gone: so is the file
        self._stale.append((folder, name))

    def commit(self) -> None:
        """Publish every staged file, then delete stale files and what was set aside."""
        for folder, temp, name in self._staged:
            self.dest.rename(folder, temp, name)
        for folder, name in self._stale:
            self.dest.unlink(folder, name)
        for folder, aside, _name, is_folder in self._aside:
            if is_folder:
                self.dest.remove_tree(folder, aside)
            else:
                self.dest.unlink(folder, aside)
        self._clear()

    def rollback(self) -> None:
        """Undo everything staged: the destination is left as it was. Best effort
        per entry: one that cannot be undone does not stop the others."""
        for folder, name in reversed(self._created):
            with suppress(OSError, KeelError):
                self.dest.unlink(folder, name)
        for folder, temp, _name in self._staged:
            with suppress(OSError, KeelError):
                self.dest.unlink(folder, temp)
        self.dest.remove_created_folders()
        for folder, aside, name, _is_folder in reversed(self._aside):
            with suppress(OSError, KeelError):
                self.dest.rename(folder, aside, name)
        self._clear()

    def _record(self, rel: str, made: str, replace: bool) -> None:
        folder, _, name = rel.rpartition("/")
        if replace:
            self._staged.append((folder, made, name))
        else:
            self._created.append((folder, name))

    def _clear(self) -> None:
        self._created, self._staged, self._aside, self._stale = [], [], [], []
