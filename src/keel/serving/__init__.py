"""Serving: a fast model server with canary, A/B and shadow rollout, automatic
rollback, an inference log and feedback.

- :mod:`keel.serving.rollout`: deployment changes (create, canary, ab, shadow,
  promote, rollback), kept in the store with their audit;
- :mod:`keel.serving.runtime` and :mod:`keel.serving.app`: what a server process
  runs (``keel serve``);
- :func:`inference_log`: every prediction, read back as a DataFrame.

>>> keel.inference_log("prod").read(start="1h")
"""

from __future__ import annotations

from typing import Any


def inference_log(deployment: str, ws: Any = None) -> Any:
    """The inference log of ``deployment`` (see :mod:`keel.serving.inference_log`)."""
    from keel.serving.inference_log import inference_log as _log

    return _log(deployment, ws)
