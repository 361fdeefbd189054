"""Ending the runs a process leaves open when it exits or is terminated.

Installed by the first run a process starts, never by an import: a script
that exits normally without closing its run gets it FINISHED (as MLflow
does); SIGTERM (what ``kill``, systemd and Kubernetes send) ends every open
run KILLED with everything it logged stored, then lets the signal do what it
did before. SIGKILL cannot be caught: the spool keeps the data and the next
process to open the store recovers it.

The set of open runs is the one piece of process-wide state in tracking, and
only this module reads it: exit is a process-wide event. Which run a thread
or task logs to is decided elsewhere, per context (``keel.context``).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

log = logging.getLogger("keel.tracking")
SIGTERM_DEADLINE = 10.0  # seconds to store open runs before the signal ends the process


class ExitGuard:
    """Open runs of this process, and the hooks that end them at exit."""

    def __init__(self) -> None:
        # Strong references: a run whose thread ended without ending it is still
        # ended (FINISHED) at exit rather than left for recovery.
        self._runs: set[Any] = set()
        self._lock = threading.Lock()
        self._installed = False
        self._previous_sigterm: Any = None

    def watch(self, run: Any) -> None:
        """Remember an open run; install the hooks on the first call."""
        with self._lock:
            self._runs.add(run)
            if not self._installed:
                self._install()

    def forget(self, run: Any) -> None:
        with self._lock:
            self._runs.discard(run)

    def open_runs(self) -> list[Any]:
        with self._lock:
            return [r for r in self._runs if not r.ended]

    def _install(self) -> None:
        self._installed = True
        atexit.register(self._at_exit)
        # Signal handlers can only be set from the main thread, and a handler
        # the application set itself is left alone.
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            self._previous_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)

    def end_all(self, status: str, error: str | None = None) -> None:
        """End every open run, innermost (newest) first."""
        for run in reversed(self.open_runs()):
            # The process is going away; if the store fails, the spool keeps the data.
            with contextlib.suppress(Exception):
                run.end(status, error)

    def _at_exit(self) -> None:
        self.end_all("FINISHED")

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        # On another thread, with a deadline: the main thread may have been
        # interrupted while holding a spool's lock. What is not stored in time
        # stays in the spool, and recovery marks the run KILLED anyway.
        ender = threading.Thread(target=self.end_all, args=("KILLED", "terminated by SIGTERM"),
                                 name="keel-sigterm", daemon=True)
        ender.start()
        ender.join(SIGTERM_DEADLINE)
        signal.signal(signal.SIGTERM, self._previous_sigterm or signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


guard = ExitGuard()
