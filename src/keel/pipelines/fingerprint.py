"""What a step's cache key is made of: its code (and the project's own functions
it calls), its params, and the environment it declares.

The code digest follows the step's global names to functions defined in the
project (not in the standard library or installed packages): editing a helper
that ``train`` calls makes ``train`` stale, while upgrading pandas does not
(declare ``env=["pandas"]`` on the step for that). Source text is hashed,
so comments count: a key is cheap to miss and never wrong to miss.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
import os
import sys
import textwrap
import types
from collections.abc import Callable
from typing import Any

from keel.errors import InvalidInput


@functools.cache
def _installed() -> tuple[str, ...]:
    """Where installed packages and the standard library live (not project code).
    Computed on first use: sysconfig costs ~15 ms to import and read."""
    import sysconfig

    paths = sysconfig.get_paths()
    return tuple(os.path.realpath(p) for p in
                 {paths["purelib"], paths["platlib"], paths["stdlib"], sys.prefix,
                  sys.base_prefix})


def digest_text(*parts: str) -> str:
    """A short, stable digest of text parts (SHA-256; cache keys, not blob digests)."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode())
        hasher.update(b"\0")
    return hasher.hexdigest()


def code_digest(fn: Callable[..., Any]) -> str:
    """The digest of ``fn``'s source and of every project-local function it reaches."""
    seen: dict[str, str] = {}
    _visit(fn, seen)
    return digest_text(*(f"{name}\n{source}" for name, source in sorted(seen.items())))


def _visit(fn: Any, seen: dict[str, str]) -> None:
    fn = inspect.unwrap(fn)
    # The qualified name without the module: a pipeline file is loaded under a
    # module name of keel's choosing, which must not move keys.
    name = getattr(fn, "__qualname__", repr(fn))
    if name in seen:
        return
    seen[name] = _source(fn)
    code = getattr(fn, "__code__", None)
    if code is None:
        return
    for global_name in _names(code):
        target = fn.__globals__.get(global_name)
        step_fn = getattr(target, "keel_step_function", None)
        if step_fn is not None:
            continue  # another step: a node of its own, keyed on its own
        if isinstance(target, types.FunctionType) and _project_local(target):
            _visit(target, seen)


def _names(code: types.CodeType) -> set[str]:
    """Global names used by a code object and the functions nested in it."""
    found = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= _names(const)
    return found


def _source(fn: Any) -> str:
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)  # no source (a REPL): the bytecode
        return repr((code.co_code, code.co_consts)) if code is not None else repr(fn)


def _project_local(fn: types.FunctionType) -> bool:
    module = sys.modules.get(fn.__module__)
    path = getattr(module, "__file__", None)
    if not path:
        return fn.__module__ == "__main__"
    real = os.path.realpath(path)
    return not real.startswith(_installed())


def params_digest(params: dict[str, Any]) -> str:
    return digest_text(canonical(params))


def canonical(value: Any) -> str:
    """Params as canonical JSON: the same values always give the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)


def check_param(step: str, name: str, value: Any) -> Any:
    """A param must be JSON (numbers, text, bools, None, lists and dicts of them):
    it is part of the cache key and shown in the run's params."""
    try:
        canonical(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"step {step!r}: param {name!r} is a {type(value).__name__}, "
                           "which a cache key cannot hold",
                           hint="pass numbers, text, bools, lists or dicts as params; pass "
                                "data from another step or keel.dataset(...) as inputs") from exc
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def env_digest(packages: tuple[str, ...]) -> dict[str, str]:
    """The installed version of each declared distribution (``env=["scikit-learn"]``)."""
    if not packages:
        return {}
    import importlib.metadata  # ~30 ms: only for steps that declare an environment

    versions = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
