"""The workspace every command works in: the current folder's, its orphaned
spools recovered first. Imported lazily so ``keel --help`` opens nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keel.store.protocol import Store
    from keel.workspace import Workspace


def workspace() -> Workspace:
    """The current folder's workspace, ready for use (as every command needs it)."""
    from keel.tracking import session

    return session.workspace()


def store() -> Store:
    """The metadata store of the current folder's workspace."""
    return workspace().store
