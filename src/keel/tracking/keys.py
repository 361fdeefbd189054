"""What keys, values and artifact paths keel accepts, checked before anything is stored."""

from __future__ import annotations

import math
import numbers
import re
from pathlib import PurePosixPath

from keel.errors import InvalidInput

MAX_KEY = 250
MAX_VALUE = 8000
MIN_STEP, MAX_STEP = -(2**63), 2**63 - 1  # steps are stored in 64-bit integer columns
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")


def check_key(key: object, what: str = "key") -> str:
    """Return ``key`` if it is a usable param/metric/tag name, else raise.

    Keys may hold letters, digits and ``_ - . / : space`` and use ``/`` for
    grouping (``train/loss``), but never control characters, backslashes,
    ``..`` segments, or a leading/trailing ``/``.
    """
    if not isinstance(key, str):
        raise InvalidInput(f"{what} must be a string, got {type(key).__name__}")
    if not key:
        raise InvalidInput(f"{what} is empty", hint="give it a name such as 'accuracy'")
    if len(key) > MAX_KEY:
        raise InvalidInput(f"{what} {key[:40]!r}... is {len(key)} characters long",
                           hint=f"keys hold at most {MAX_KEY} characters")
    if _BAD_CHARS.search(key):
        raise InvalidInput(f"{what} {key!r} contains a control character or backslash",
                           hint="use letters, digits and _ - . / : or spaces")
    parts = key.split("/")
    if key.startswith("/") or key.endswith("/") or "" in parts or ".." in parts:
        raise InvalidInput(f"{what} {key!r} is not a clean '/'-separated name",
                           hint="no leading or trailing '/', no '//' and no '..' segments")
    return key


def check_metric_value(key: str, value: object) -> float:
    """The metric value as a float; NaN and +-inf are allowed and kept."""
    if isinstance(value, float | int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise InvalidInput(f"metric {key!r} must be a number, got {type(value).__name__} "
                       f"{value!r}"[:200],
                       hint="log numbers with log_metric; put text in a tag or param")


def param_text(key: str, value: object) -> str:
    """Params are stored as text; refuse values too long to be a setting."""
    text = value if isinstance(value, str) else repr(value) if isinstance(value, float) \
        else str(value)
    if "\x00" in text:
        raise InvalidInput(f"value of {key!r} contains a NUL character",
                           hint="PostgreSQL cannot store NUL in text; remove it or log the "
                                "value as an artifact with log_text()")
    if len(text) > MAX_VALUE:
        raise InvalidInput(f"value of {key!r} is {len(text)} characters long",
                           hint=f"values hold at most {MAX_VALUE} characters; "
                           "log long text with log_text()")
    return text


def check_step(step: object) -> int:
    """A step: an integer that fits 64 bits (numpy integers are fine)."""
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise InvalidInput(f"step must be an integer, got {step!r}")
    value = int(step)
    if not MIN_STEP <= value <= MAX_STEP:
        raise InvalidInput(f"step {value} does not fit in 64 bits",
                           hint=f"steps go from {MIN_STEP} to {MAX_STEP}")
    return value


def check_artifact_path(path: str) -> str:
    """A clean relative artifact path that cannot escape the run's root."""
    if not isinstance(path, str) or not path:
        raise InvalidInput("artifact path is empty",
                           hint="pass a relative path like 'plots/roc.png'")
    if _BAD_CHARS.search(path):
        raise InvalidInput(f"artifact path {path!r} contains a control character or backslash")
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts:
        raise InvalidInput(f"artifact path {path!r} escapes the run's artifact root",
                           hint="use a relative path without '..'")
    clean = str(pure)
    if clean in ("", "."):
        raise InvalidInput(f"artifact path {path!r} names no file")
    return clean


def is_finite(value: float) -> bool:
    return math.isfinite(value)
