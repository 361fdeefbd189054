"""What a step can take besides params: another step's output, or a dataset version."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInput:
    """``keel.dataset("transactions@2")`` (or ``@latest``) passed to a step: the step
    receives a read-only local path to the version's files, the version is
    recorded as the step run's input, and its manifest digest is part of the
    step's cache key (a new ``@latest`` makes the step stale)."""

    ref: str

    def __post_init__(self) -> None:
        # Imported here: keel.data loads its verbs (~45 ms), and a pipeline that
        # reads no dataset should not pay for it on every no-change run.
        from keel.data.ref import parse_ref

        parse_ref(self.ref)  # a bad reference fails when the pipeline is defined


def dataset(ref: str) -> DatasetInput:
    """A dataset version as a step input.

    >>> train(keel.dataset("transactions@latest"), C=0.5)
    """
    return DatasetInput(ref)
