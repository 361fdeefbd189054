"""Folders of the blob store, created so that their names survive a power loss.

A blob published into a fan-out folder (``ab/``) that was just created is
durable only once the new folder's own name is: ``fsync`` of the folder the
blob was renamed into covers the blob's name, ``fsync`` of its parent covers
the folder's. Each folder is made once per store (256 fan-out folders at
most), so the extra ``fsync`` is paid at most 257 times per store, not per blob.
"""

from __future__ import annotations

import os
from contextlib import suppress

from keel.durability import fsync_dir


def make_folders(path: str | os.PathLike[str]) -> None:
    """Create ``path`` and any missing parents, fsyncing the parent of each one made."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    if parent != path:
        make_folders(parent)
    # FileExistsError: another thread or process made it just now; its name may not
    # be durable yet, so the parent is fsynced all the same.
    with suppress(FileExistsError):
        os.mkdir(path)
    fsync_dir(parent)
