"""A Rich progress bar behind the library's Progress protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING

import rich

from keel.data.progress import NoProgress

if TYPE_CHECKING:
    from rich.progress import TaskID

    from keel.data.progress import Progress


def progress_bar(unit: str = "bytes") -> Progress:
    """A bar where the console is a terminal; elsewhere (a pipe, a log file) none,
    without loading Rich's progress module (~7 ms of a command's start-up)."""
    return RichProgress(unit) if rich.get_console().is_terminal else NoProgress()


class RichProgress:
    """Shows a bar while long work runs; silent for tiny jobs. The bar is transient:
    a console that is not a terminal would show nothing of it."""

    def __init__(self, unit: str = "bytes") -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        counter = [DownloadColumn(), TransferSpeedColumn()] if unit == "bytes" \
            else [MofNCompleteColumn()]
        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), *counter,
                             TimeRemainingColumn(), transient=True)
        self._task: TaskID | None = None

    def start(self, description: str, total: int) -> None:
        if total <= 0:
            return
        self._bar.start()
        self._task = self._bar.add_task(description, total=total)

    def advance(self, amount: int = 1) -> None:
        if self._task is not None:
            self._bar.advance(self._task, amount)

    def done(self) -> None:
        if self._task is not None:
            self._bar.stop()
            self._task = None
