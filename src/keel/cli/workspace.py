"""The workspace every command works in: the current folder's, its orphaned
spools recovered first. Imported lazily so ``keel --help`` opens nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keel.store.protocol import Store
    from keel.workspace import Workspace


def workspace(create: bool = False) -> Workspace:
    """The current folder's workspace, ready for use (as every command needs it);
    with ``create``, made here if there is none (commands that start runs, as a
    first ``keel.start_run()`` does)."""
    from keel.tracking import session

    return session.workspace(create=create)


def store() -> Store:
    """The metadata store of the current folder's workspace."""
    return workspace().store
