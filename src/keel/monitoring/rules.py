"""Rules over monitored figures: ``drift_share > 0.3``, ``performance.accuracy < 0.8``,
``drift.amount >= 0.2``.

The same small language serves alert rules and continuous-training triggers
(and reads like the gates of ``keel model promote --require``). A rule names
a figure; :func:`figures` lists every figure a monitoring result offers.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from keel.errors import InvalidInput

_RULE = re.compile(r"^\s*(.+?)\s*(>=|<=|==|!=|>|<)\s*([-+]?[0-9.]+(?:[eE][-+]?\d+)?)\s*$")
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
    "==": operator.eq, "!=": operator.ne}
# Names people reach for, mapped to the figure they mean.
ALIASES = {"share_drifted": "drift_share", "drifted_share": "drift_share"}


@dataclass(frozen=True)
class Rule:
    """``figure op threshold``; the figure may contain spaces (feature names do)."""

    figure: str
    op: str
    threshold: float

    @classmethod
    def parse(cls, text: str) -> Rule:
        match = _RULE.match(text)
        if not match:
            raise InvalidInput(f"bad rule {text!r}",
                               hint="write FIGURE OP NUMBER, e.g. \"drift_share > 0.3\" or "
                                    "\"performance.accuracy < 0.8\" (OP: > >= < <= == !=)")
        figure = match.group(1).strip().strip('"')
        try:
            threshold = float(match.group(3))
        except ValueError as exc:
            raise InvalidInput(f"bad number in rule {text!r}") from exc
        return cls(ALIASES.get(figure, figure), match.group(2), threshold)

    def __str__(self) -> str:
        return f"{self.figure} {self.op} {self.threshold:g}"

    def value(self, figures: Mapping[str, float]) -> float | None:
        """The figure's value, None if this result has no such figure."""
        found = figures.get(self.figure)
        return None if found is None or not math.isfinite(found) else float(found)

    def fires(self, figures: Mapping[str, float]) -> bool:
        """True when the figure exists and the comparison holds."""
        found = self.value(figures)
        return found is not None and _OPERATORS[self.op](found, self.threshold)


def parse_rules(texts: object, where: str) -> list[Rule]:
    """A list of rule strings from ``keel.toml`` or the command line."""
    if texts is None:
        return []
    if isinstance(texts, str) or not isinstance(texts, list | tuple):
        raise InvalidInput(f"{where} must be a list of rules, e.g. [\"drift_share > 0.3\"]")
    return [Rule.parse(str(t)) for t in texts]
