"""Progress reporting injected by the caller: a no-op by default, Rich in the CLI."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Told how much work there is and how much is done; library code never prints."""

    def start(self, description: str, total: int) -> None: ...
    def advance(self, amount: int = 1) -> None: ...
    def done(self) -> None: ...


class NoProgress:
    """The default: reports nothing."""

    def start(self, description: str, total: int) -> None:
        pass

    def advance(self, amount: int = 1) -> None:
        pass

    def done(self) -> None:
        pass
