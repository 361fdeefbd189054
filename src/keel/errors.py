"""One exception tree for keel: every error names what went wrong and how to fix it.

Interfaces render these the same way everywhere: the CLI prints ``error:`` and
``hint:`` lines and exits 1; the REST API answers ``status`` with a JSON body.
Every error class keel raises lives here, so an interface maps each to one
status without importing the domain modules that raise it.

A leaf module: it imports nothing from keel.
"""

from __future__ import annotations

from typing import Any


class KeelError(Exception):
    """Root of every error keel raises on purpose.

    Example: ``raise InvalidInput("metric 'acc' must be a number, got 'high'",
    hint="pass a float or int")``
    """

    status = 400

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} (hint: {self.hint})"
        return self.message

    def to_dict(self) -> dict[str, object]:
        """The error as the REST API answers it."""
        return {"error": self.message, "hint": self.hint, "status": self.status}


class NotFound(KeelError, LookupError):
    """A named thing (run, experiment, artifact, workspace) does not exist."""

    status = 404


class AlreadyExists(KeelError):
    """Creating something whose name is taken."""

    status = 409


class InvalidInput(KeelError, ValueError):
    """The caller passed a value keel cannot accept."""

    status = 422


class Conflict(KeelError):
    """The request clashes with stored state (logging to a finished run...)."""

    status = 409


class Forbidden(KeelError):
    """The caller may not do this."""

    status = 403


class CorruptData(KeelError):
    """Stored bytes do not match their recorded digest, or cannot be decoded."""

    status = 500


class IncompatibleVersion(KeelError):
    """Stored data was written by a newer keel than this one."""

    status = 409


class StoreUnavailable(KeelError):
    """The metadata store cannot be reached or opened (server down, bad path)."""

    status = 503


class RemoteUnreachable(KeelError):
    """A data remote could not be read or written (network, credentials, bucket)."""

    status = 502


class UnsafePath(InvalidInput):
    """A path would leave the folder it belongs to (``..``, absolute, a symlink out),
    or a file would get permission bits keel never writes (setuid, setgid, sticky)."""


class ChecksFailed(KeelError):
    """Data quality checks failed, so no dataset version was created.

    ``reports`` holds one report per checked file (see ``keel.data.checks``).
    """

    status = 422

    def __init__(self, message: str, hint: str | None = None,
                 reports: list[Any] | None = None) -> None:
        super().__init__(message, hint)
        self.reports = list(reports or [])


class GateFailed(Conflict):
    """A promotion was refused; ``report`` holds the evidence (a ``GateReport``)."""

    def __init__(self, message: str, hint: str | None = None, report: Any = None) -> None:
        super().__init__(message, hint)
        self.report = report


class RunAborted(KeelError):
    """A run was stopped by a rule (``--abort-if``, ``--budget``, early stopping);
    the message says which rule and the figures that made it fire."""

    status = 409
