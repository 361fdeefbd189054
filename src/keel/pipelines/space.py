"""The params a sweep tries: a grid (every combination) and/or random draws.

    --grid lr=0.1,0.01 --grid depth=3,5                      4 trials
    --random 20 --param "lr=loguniform(1e-4,1e-1)"          20 trials
              --param "depth=int(2,8)" --param "kernel=choice(rbf,linear)"

Values are numbers when they read as numbers, text otherwise. Random draws
come from a seeded generator (``--seed``), so a sweep can be repeated.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Callable
from typing import Any

from keel.errors import InvalidInput

_DISTRIBUTION = re.compile(r"^(\w+)\((.*)\)$")


def value(text: str) -> Any:
    """A grid value: an int, a float, true/false, or the text itself."""
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def parse_grid(items: list[str] | dict[str, list[Any]] | None) -> dict[str, list[Any]]:
    """``["lr=0.1,0.01"]`` (or a dict already) -> ``{"lr": [0.1, 0.01]}``."""
    if isinstance(items, dict):
        return {k: list(v) for k, v in items.items()}
    grid: dict[str, list[Any]] = {}
    for item in items or []:
        name, sep, values = item.partition("=")
        name = name.strip()
        choices = [value(v) for v in values.split(",") if v.strip()]
        if not sep or not name or not choices:
            raise InvalidInput(f"bad --grid {item!r}", hint="write NAME=V1,V2,..., e.g. "
                                                            "lr=0.1,0.01")
        if name in grid:
            raise InvalidInput(f"--grid names {name!r} twice")
        grid[name] = choices
    return grid


def parse_distributions(items: list[str] | dict[str, str] | None
                        ) -> dict[str, Callable[[random.Random], Any]]:
    """``["lr=loguniform(1e-4,1e-1)"]`` -> samplers by param name."""
    pairs = items.items() if isinstance(items, dict) else \
        (item.partition("=")[::2] for item in items or [])
    samplers = {}
    for name, spec in pairs:
        name = name.strip()
        if not name or not spec:
            raise InvalidInput(f"bad --param {name}={spec!r}",
                               hint="write NAME=DIST(...), e.g. lr=loguniform(1e-4,1e-1)")
        samplers[name] = _sampler(name, spec.strip())
    return samplers


def _sampler(name: str, spec: str) -> Callable[[random.Random], Any]:
    match = _DISTRIBUTION.match(spec)
    if not match:
        raise InvalidInput(f"bad distribution for {name!r}: {spec!r}",
                           hint="use uniform(a,b), loguniform(a,b), int(a,b) or "
                                "choice(x,y,...)")
    kind, args = match.group(1).lower(), [a.strip() for a in match.group(2).split(",")]
    try:
        if kind == "choice":
            options = [value(a) for a in args if a]
            if not options:
                raise ValueError("no options")
            return lambda rng: rng.choice(options)
        low, high = (float(a) for a in args)
        if low > high:
            raise ValueError(f"{low} > {high}")
        if kind == "uniform":
            return lambda rng: rng.uniform(low, high)
        if kind == "loguniform":
            if low <= 0:
                raise ValueError("loguniform needs positive bounds")
            return lambda rng: math.exp(rng.uniform(math.log(low), math.log(high)))
        if kind in ("int", "randint"):
            return lambda rng: rng.randint(int(low), int(high))
    except ValueError as exc:
        raise InvalidInput(f"bad distribution for {name!r}: {spec!r} ({exc})",
                           hint="e.g. uniform(0,1), loguniform(1e-4,1e-1), int(2,8), "
                                "choice(a,b)") from exc
    raise InvalidInput(f"unknown distribution {kind!r} for {name!r}",
                       hint="use uniform, loguniform, int or choice")


def trials(grid: dict[str, list[Any]], samplers: dict[str, Callable[[random.Random], Any]],
           random_trials: int = 0, seed: int = 0) -> list[dict[str, Any]]:
    """Every grid combination, each with ``random_trials`` random draws of the
    sampled params (or just the draws without a grid)."""
    combos = [dict(zip(grid, values, strict=True))
              for values in itertools.product(*grid.values())] if grid else [{}]
    if samplers and random_trials < 1:
        raise InvalidInput("random distributions need --random N (how many draws)")
    if random_trials and not samplers:
        raise InvalidInput("--random N needs at least one --param NAME=DIST(...)")
    rng = random.Random(seed)
    out = []
    for combo in combos:
        for _ in range(random_trials or 1):
            out.append({**combo, **{k: s(rng) for k, s in samplers.items()}})
    if out == [{}]:
        raise InvalidInput("the sweep has no params to try",
                           hint="give --grid NAME=V1,V2 or --random N --param NAME=DIST(...)")
    return out
