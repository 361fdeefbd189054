"""The graph a pipeline function traces: one node per step call, edges where an
output is passed on, in an order where every node comes after its inputs.

Tracing runs the pipeline function once with a graph in a ``ContextVar``:
each step call adds a node and returns it as the placeholder of its output.
Data edges can only point backwards (a placeholder exists only once its step
was called), so the order of calls is already an order of execution; ``after``
edges (named, no data) can close a cycle, which is refused, naming it.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.pipelines.fingerprint import check_param
from keel.pipelines.inputs import DatasetInput

if TYPE_CHECKING:
    from keel.pipelines.step import Step

_graph: ContextVar[Graph | None] = ContextVar("keel_pipeline_graph", default=None)


def current_graph() -> Graph | None:
    """The graph being traced in this context, if any."""
    return _graph.get()


@dataclass(eq=False)
class Node:
    """One step call in a pipeline: its step, inputs, params and the call's arguments."""

    name: str
    step: Step
    arguments: dict[str, Any]            # parameter name -> value, Node or DatasetInput
    inputs: dict[str, Node | DatasetInput]
    params: dict[str, Any]
    after: list[Node] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"<output of step {self.name}>"

    @property
    def upstream(self) -> list[Node]:
        """The nodes this one needs first (data and ``after`` edges)."""
        found = [v for v in self.inputs.values() if isinstance(v, Node)]
        return [*dict.fromkeys(found + self.after)]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise InvalidInput(f"the output of step {self.name!r} is used as a value "
                           f"({self.name}.{name}) while the pipeline is being defined",
                           hint="pass a step's output to another step; work with the value "
                                "inside a step")


@dataclass
class Graph:
    """Nodes in call order (see the module docstring) and the pipeline's targets."""

    pipeline: str
    nodes: list[Node] = field(default_factory=list)

    def add(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Node:
        try:
            bound = step.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput(f"step {step.name!r} was called with arguments it does not "
                               f"take: {exc}") from exc
        bound.apply_defaults()
        inputs: dict[str, Node | DatasetInput] = {}
        params: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            if isinstance(value, Node | DatasetInput):
                inputs[name] = value
            elif _holds_node(value):
                raise InvalidInput(f"step {step.name!r}: argument {name!r} puts a step's "
                                   "output inside a list or dict",
                                   hint="pass each upstream output as an argument of its own")
            else:
                params[name] = check_param(step.name, name, value)
        node = Node(self._unique(step.name), step, dict(bound.arguments), inputs, params)
        self.nodes.append(node)
        return node

    def _unique(self, name: str) -> str:
        taken = {n.name for n in self.nodes}
        if name not in taken:
            return name
        number = 2
        while f"{name}-{number}" in taken:
            number += 1
        return f"{name}-{number}"

    def resolve_after(self) -> None:
        """Turn ``after=["step"]`` names into edges; refuse unknown names and cycles."""
        by_name = {n.name: n for n in self.nodes}
        for node in self.nodes:
            for name in node.step.after:
                if name not in by_name:
                    raise InvalidInput(f"step {node.name!r} runs after {name!r}, which is not "
                                       f"a step of pipeline {self.pipeline!r}",
                                       hint="steps: " + ", ".join(by_name))
                node.after.append(by_name[name])
        self.nodes = self._ordered()

    def _ordered(self) -> list[Node]:
        order: list[Node] = []
        state: dict[int, str] = {}

        def visit(node: Node, path: list[str]) -> None:
            mark = state.get(id(node))
            if mark == "done":
                return
            if mark == "active":
                cycle = [*path[path.index(node.name):], node.name]
                raise InvalidInput(f"pipeline {self.pipeline!r} has a cycle: "
                                   + " -> ".join(cycle),
                                   hint="a step cannot (indirectly) run after itself; check "
                                        "the after= of these steps")
            state[id(node)] = "active"
            for up in node.upstream:
                visit(up, [*path, node.name])
            state[id(node)] = "done"
            order.append(node)

        for node in self.nodes:
            visit(node, [])
        return order

    def downstream_of(self, names: set[str]) -> set[str]:
        """``names`` and every node that (indirectly) depends on them."""
        found = set(names)
        for node in self.nodes:  # in order: a node's upstream are decided before it
            if any(up.name in found for up in node.upstream):
                found.add(node.name)
        return found

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise InvalidInput(f"pipeline {self.pipeline!r} has no step {name!r}",
                           hint="steps: " + ", ".join(n.name for n in self.nodes))


def _holds_node(value: Any) -> bool:
    if isinstance(value, Node | DatasetInput):
        return True
    if isinstance(value, list | tuple | set):
        return any(_holds_node(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_node(v) for v in value.values())
    return False


@contextmanager
def tracing(pipeline: str) -> Iterator[Graph]:
    """Record step calls made in this block into a new graph."""
    graph = Graph(pipeline)
    token = _graph.set(graph)
    try:
        yield graph
    finally:
        _graph.reset(token)


def call_arguments(node: Node, values: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The positional and keyword arguments to call the node's function with,
    its inputs replaced by ``values`` (parameter name -> loaded value)."""
    arguments = {name: values.get(name, value) for name, value in node.arguments.items()}
    bound = inspect.BoundArguments(node.step.signature, arguments)
    return bound.args, bound.kwargs
