"""What keel accepts as a name, checked the same way by the Python API, the CLI
and (later) the server.

Two kinds of names:

- **identifiers** (datasets, registered models): used in references such as
  ``transactions@2`` and ``churn/3`` and in file paths (caches, remotes), so
  letters, digits, ``_ . -`` only, starting with a letter or digit, at most
  128 characters, no ``..``;
- **labels** (experiments, runs): free text as people write it ("churn EU",
  "/Shared/churn" from MLflow clients), but never empty, at most 256
  characters, no control characters (a name is printed to terminals: an
  ANSI escape in it must not reach them), no backslash, no ``..`` segment,
  no leading or trailing spaces.
"""

from __future__ import annotations

import re

from keel.errors import InvalidInput

MAX_IDENTIFIER = 128
MAX_LABEL = 256
_IDENTIFIER = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.\-]{{0,{MAX_IDENTIFIER - 1}}}")
# C0 controls, DEL, C1 controls (ESC and CSI start terminal escape sequences).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")


def check_identifier(name: object, what: str, example: str = "churn-eu") -> str:
    """``name`` if it is a valid identifier (see the module docstring), else raise."""
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name) or ".." in name:
        shown = repr(name)[:60] if isinstance(name, str) else type(name).__name__
        raise InvalidInput(f"bad {what} {shown}",
                           hint="use letters, digits, '_', '.', '-' (no '/' or spaces), at most "
                                f"{MAX_IDENTIFIER} characters, e.g. {example}")
    return name


def check_label(name: object, what: str) -> str:
    """``name`` if it is a valid label (see the module docstring), else raise."""
    if not isinstance(name, str):
        raise InvalidInput(f"{what} must be a string, got {type(name).__name__}")
    if not name.strip():
        raise InvalidInput(f"{what} is empty", hint="give it a name such as 'churn'")
    if len(name) > MAX_LABEL:
        raise InvalidInput(f"{what} {name[:40]!r}... is {len(name)} characters long",
                           hint=f"names hold at most {MAX_LABEL} characters")
    if _CONTROL.search(name):
        raise InvalidInput(f"{what} {name[:60]!r} contains a control character or backslash",
                           hint="use printable characters only")
    if name != name.strip() or ".." in name.split("/"):
        raise InvalidInput(f"bad {what} {name[:60]!r}",
                           hint="no leading or trailing spaces and no '..' segments")
    return name


def printable(text: str) -> str:
    """``text`` safe to print to a terminal: control characters shown escaped."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1] if m.group() != "\\" else "\\", text)
