"""A Rich progress bar behind the library's Progress protocol."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class RichProgress:
    """Shows a bar on stderr while long work runs; silent for tiny jobs."""

    def __init__(self, unit: str = "bytes") -> None:
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
