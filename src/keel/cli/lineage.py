"""``keel lineage``: where a model, run or dataset version came from."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.tree import Tree

from keel.cli.render import markup_text, when

console = Console()


def lineage(reference: str = typer.Argument(..., help="models:/churn@champion, churn/3, "
                                                       "runs:/<id>/model, a run id, a "
                                                       "dataset version NAME@N, or a "
                                                       "prediction's request id"),
            as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """The chain: (prediction ->) model version -> run -> params, metrics -> data -> commit
    -> environment."""
    from keel.cli.workspace import workspace
    from keel.errors import NotFound
    from keel.models.lineage import lineage as build

    ws = workspace()
    try:
        found = build(reference, ws)
    except NotFound as exc:
        from keel.serving.lineage import request_lineage

        try:
            found = request_lineage(reference, ws)
        except NotFound:
            raise NotFound(f"{reference!r} is not a model, run, dataset version or request id "
                           "keel knows", hint=exc.hint) from None
    if as_json:
        typer.echo(json.dumps(found, indent=2, default=str))
        return
    console.print(render(found))


def render(found: dict[str, Any]) -> Tree:
    """The lineage as a Rich tree, root first."""
    if found["kind"] == "prediction":
        return _prediction(found)
    if found["kind"] == "dataset":
        d = found["dataset"]
        root = Tree(f"[bold]dataset {d['ref']}[/] ({d['files']} files, {d['bytes']:,} bytes, "
                    f"manifest {d['manifest_digest'][:12]})")
        for run in found["runs"]:
            models = f" -> models {', '.join(run['models'])}" if run["models"] else ""
            root.add(f"{run['role']} of run {run['id'][:12]} {markup_text(run['name'])} "
                     f"({run['status']}){models}")
        return root
    if found["kind"] == "model":
        m = found["model"]
        title = f"model {m.get('name')}/{m.get('version')}" if m.get("name") else m["uri"]
        aliases = f" [{', '.join(m.get('aliases', []))}]" if m.get("aliases") else ""
        root = Tree(f"[bold]{markup_text(title)}{markup_text(aliases)}[/] {m['flavor']} package "
                    f"{m['package_digest'][:12]}, registered {when(m.get('registered_at'))} "
                    f"by {m.get('registered_by', '-')}")
        node = root
        chain = found.get("automation", [])
        if chain:
            made = root.add(f"[bold]made by continuous training[/] (chain {chain[0]['id']}, "
                            f"deployment {markup_text(chain[0]['deployment'])})")
            for step in chain:
                made.add(f"{step['action']} {step['outcome']}: "
                         f"{markup_text(step['reason'][:150])}")
    else:
        root = node = Tree(f"[bold]run {found['run']['id']}[/]")
    run = found.get("run")
    if not run:
        return root
    if "status" not in run:
        node.add(f"run {run['id']} ({run.get('note', '')})")
        return root
    branch = node.add(f"[bold]run {run['id'][:12]}[/] {markup_text(run['name'])} in "
                      f"{markup_text(run['experiment'])} ({run['status']}, by {run['user']}, "
                      f"{when(run['start_time'])})")
    params = ", ".join(f"{k}={v}" for k, v in sorted(run["params"].items())[:12])
    branch.add(f"params: {markup_text(params) or '-'}")
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(run["metrics"].items())
                        if isinstance(v, float))
    branch.add(f"metrics: {markup_text(metrics[:300]) or '-'}")
    data = branch.add("data")
    for d in found.get("datasets", []):
        via = f" (via run {d['via_run'][:12]})" if d.get("via_run") else ""
        data.add(f"{d['ref']} {d['role']}, manifest {d['manifest_digest'][:12]}{via}")
    if not found.get("datasets"):
        data.add("no dataset versions recorded")
    code = found.get("code", {})
    dirty = " [yellow]+ uncommitted changes (artifact keel/git.diff)[/]" if code.get("dirty") \
        else ""
    branch.add(f"code: commit {code.get('commit') or 'not in git'} on "
               f"{code.get('branch') or '-'}{dirty}; entry point "
               f"{markup_text(str(code.get('entrypoint')))}")
    env = found.get("environment", {})
    branch.add(f"environment: Python {env.get('python')} on {env.get('platform')}, host "
               f"{env.get('host')}; packages in artifact {env.get('packages_artifact') or '-'}")
    if found.get("registered_as"):
        branch.add("registered as " + ", ".join(found["registered_as"]))
    return root


def _prediction(found: dict[str, Any]) -> Tree:
    p = found["prediction"]
    label = "" if p.get("label") is None else f", label {p['label']}"
    root = Tree(f"[bold]prediction {p['request_id']}[/] at {when(p['time'])} UTC by "
                f"deployment {markup_text(p['deployment'])}: {p['rows']} row(s) -> "
                f"{markup_text(str(p['predictions'][:10]))}{markup_text(label)} "
                f"({p['latency_ms']:.2f} ms)")
    shown = str(p["inputs"][0]) if p["inputs"] else "-"
    more = f" (+{len(p['inputs']) - 1} more rows)" if len(p["inputs"]) > 1 else ""
    root.add("inputs: " + markup_text(shown if len(shown) <= 160 else shown[:157] + "...")
             + more)
    for shadow in found.get("shadows", []):
        root.add(f"shadow {shadow['model_version']} answered "
                 f"{markup_text(str(shadow['predictions'][:10]))}")
    if "model" not in found:
        root.add(f"model {p['model_version']}: {markup_text(found.get('model_note', ''))}")
        return root
    rest = {k: v for k, v in found.items() if k not in ("prediction", "shadows")}
    root.children.append(render({**rest, "kind": "model"}))
    return root
