"""``keel pipeline run|status|show``."""

from __future__ import annotations

import json
from typing import Any

import typer

app = typer.Typer(rich_markup_mode=None, no_args_is_help=True,
                  help="Run cached step pipelines, see what is stale, draw the graph.")

PARAM = typer.Option(None, "--param", "-p", help="NAME=VALUE, a pipeline param (repeatable)")
TARGET = typer.Argument(..., help="pipeline.py, or pipeline.py:NAME when it holds several")


def parse_params(items: list[str] | None, defaults: dict[str, Any]) -> dict[str, Any]:
    """``["C=0.5", "rows=10"]`` -> ``{"C": 0.5, "rows": 10}``, typed like each default."""
    from keel.errors import InvalidInput

    out: dict[str, Any] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InvalidInput(f"bad --param {item!r}", hint="write NAME=VALUE, e.g. C=0.5")
        if name not in defaults:
            raise InvalidInput(f"the pipeline has no param {name!r}",
                               hint="its params: " + (", ".join(defaults) or "none"))
        out[name] = _typed(name, text, defaults[name])
    return out


def _typed(name: str, text: str, default: Any) -> Any:
    from keel.errors import InvalidInput

    kind = type(default)
    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        if kind in (int, float):
            return kind(text)
        if isinstance(default, str):
            return text
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"--param {name}={text!r}: not a {kind.__name__}",
                           hint=f"the default is {default!r}") from exc


def _load(target: str) -> Any:
    from keel.pipelines import load_pipeline

    return load_pipeline(target)


@app.command()
def run(target: str = TARGET, param: list[str] = PARAM,
        only: list[str] = typer.Option(None, "--only", help="run only this step (repeatable); "
                                                            "its inputs must be cached"),
        force: list[str] = typer.Option(None, "--force", help="run this step even if cached "
                                                              "(repeatable)"),
        parallel: int = typer.Option(1, "--parallel", "-j",
                                     help="steps run at once (independent steps only)"),
        executor: str = typer.Option("local", "--executor", help="local or ray"),
        address: str = typer.Option(None, "--address", help="a Ray cluster, HOST:PORT"),
        as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Run a pipeline: each step ran, cached or failed, with its run id."""
    from keel.cli.workspace import workspace

    pipe = _load(target)
    params = parse_params(param, pipe.params())
    result = pipe.run(ws=workspace(create=True), executor=executor, parallel=parallel,
                      address=address, only=tuple(only or ()), force=tuple(force or ()),
                      **params)
    if as_json:
        typer.echo(json.dumps(result.to_list(), indent=2))
    else:
        width = max(len(s.step) for s in result.steps)
        for s in result.steps:
            extra = f"  {s.reason}" if s.reason and s.status != "ran" else ""
            typer.echo(f"{s.step:<{width}}  {s.status:<7}  {s.run_id or '-'}{extra}")
        typer.echo(f"pipeline run {result.run_id}" if result.run_id else
                   "every step cached: nothing to run, no run recorded")
    for s in result.steps:  # on stderr either way: --json output stays a clean list
        if s.error:
            typer.echo(f"{s.step}: {s.error.strip().splitlines()[0]}", err=True)
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def status(target: str = TARGET, param: list[str] = PARAM,
           as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Each step fresh or stale, and why (code, params, or which input changed)."""
    from keel.cli.workspace import workspace

    pipe = _load(target)
    states = pipe.status(ws=workspace(), **parse_params(param, pipe.params()))
    if as_json:
        typer.echo(json.dumps([s.to_dict() for s in states], indent=2))
        return
    width = max(len(s.step) for s in states)
    for s in states:
        typer.echo(f"{s.step:<{width}}  {s.state:<5}  {s.reason}")


@app.command()
def show(target: str = TARGET, param: list[str] = PARAM) -> None:
    """Draw the pipeline's graph: steps by depth, with what each one reads."""
    pipe = _load(target)
    graph = pipe.graph(**parse_params(param, pipe.params()))
    typer.echo(draw(graph))


def draw(graph: Any) -> str:
    """The graph as text: one line per step, indented by its depth, its inputs after
    an arrow, the params and declared files it has."""
    from keel.pipelines.inputs import DatasetInput

    depth: dict[str, int] = {}
    lines = [f"{graph.pipeline} ({len(graph.nodes)} steps)"]
    for node in graph.nodes:
        depth[node.name] = 1 + max((depth[u.name] for u in node.upstream), default=-1)
        ups = [u.name for u in node.upstream]
        datasets = [f"dataset {v.ref}" for v in node.inputs.values()
                    if isinstance(v, DatasetInput)]
        reads = ", ".join([*ups, *datasets])
        details = []
        if node.params:
            details.append(", ".join(f"{k}={v!r}" for k, v in node.params.items()))
        if node.step.outputs:
            details.append("writes " + ", ".join(node.step.outputs))
        prefix = "  " * depth[node.name] + ("└─ " if depth[node.name] else "")
        line = f"  {prefix}{node.name}"
        if reads:
            line += f"  ◀ {reads}"
        if details:
            line += f"   [{'; '.join(details)}]"
        lines.append(line)
    return "\n".join(lines)
