"""Which model version answers a request: a pure function of the request's key.

A :class:`TrafficSplit` holds weighted routes (stable, canary, A/B arms) and
the shadows that see a copy of every request. ``choose(key, draw)`` maps a
request to a route: with a sticky key (the value of ``--sticky-header``) the
key is hashed to a point in [0, 1), so the same key always reaches the same
version; without one, ``draw`` (a uniform random number) places it. No
state, no clock: the whole policy can be tested exhaustively.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from keel.errors import InvalidInput

ROLES = ("stable", "canary", "ab")


@dataclass(frozen=True)
class Route:
    """One model version in a split, its weight (percent) and role."""

    version: str          # churn/3
    weight: float         # percent of traffic, 0..100
    role: str = "stable"  # stable, canary or ab; shadows use "shadow"
    label: str = ""       # the alias it was deployed as (champion, challenger)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "weight": self.weight, "role": self.role,
                "label": self.label}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Route:
        return cls(str(data["version"]), float(data.get("weight", 0)),
                   str(data.get("role", "stable")), str(data.get("label", "")))


@dataclass(frozen=True)
class TrafficSplit:
    """Weighted routes that share all traffic, and shadows that see a copy of it."""

    routes: tuple[Route, ...]
    shadows: tuple[Route, ...] = ()
    sticky_header: str | None = None
    _edges: tuple[float, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.routes:
            raise InvalidInput("a traffic split needs at least one model version")
        if any(r.weight < 0 for r in self.routes):
            raise InvalidInput("traffic weights cannot be negative")
        total = sum(r.weight for r in self.routes)
        if total <= 0:
            raise InvalidInput("traffic weights add up to 0", hint="give a route some weight")
        edges, running = [], 0.0
        for route in self.routes:
            running += route.weight / total
            edges.append(running)
        edges[-1] = 1.0  # rounding must never leave a point unassigned
        object.__setattr__(self, "_edges", tuple(edges))

    def choose(self, key: str | None, draw: float) -> Route:
        """The route for a request with sticky ``key`` (or none: then ``draw`` in [0, 1))."""
        point = bucket(key) if key is not None else draw
        for route, edge in zip(self.routes, self._edges, strict=True):
            if point < edge:
                return route
        return self.routes[-1]

    @property
    def versions(self) -> set[str]:
        return {r.version for r in (*self.routes, *self.shadows)}


def bucket(key: str) -> float:
    """A stable point in [0, 1) for ``key``: the same on every worker, replica and run."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64
