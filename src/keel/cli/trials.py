"""``keel run`` (one script, with a budget and abort rules) and ``keel sweep``."""

from __future__ import annotations

import json
import math

import typer

RULE = typer.Option(None, "--abort-if",
                    help="stop the run when this holds, e.g. \"val_loss not improved for 5 "
                         "steps\" or \"metrics.acc < 0.6 after step 100\" (repeatable)")
BUDGET = typer.Option(None, "--budget", help="stop the run after this long, e.g. 10m")
EXIT_ABORTED = 3


def run(script: str = typer.Argument(..., help="a Python file that starts a keel run"),
        param: list[str] = typer.Option(None, "--param", "-p",
                                        help="NAME=VALUE, read with keel.params() "
                                             "(repeatable)"),
        budget: str = BUDGET, abort_if: list[str] = RULE,
        experiment: str = typer.Option(None, "--experiment", "-e"),
        as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Run a script's training under a budget and abort rules; a stopped run is
    KILLED with the rule and figures as its reason (exit 3), its metrics kept."""
    from keel.cli.workspace import workspace
    from keel.durations import parse_duration
    from keel.pipelines.space import parse_grid
    from keel.pipelines.trial import run_script

    values = {k: v[0] for k, v in parse_grid([p for p in param or []]).items()}
    outcome = run_script(script, values, tuple(abort_if or ()),
                         parse_duration(budget, "--budget") if budget else None, experiment,
                         ws=workspace(create=True))
    if as_json:
        typer.echo(json.dumps(outcome.to_dict(), indent=2))
    else:
        typer.echo(f"{outcome.status}: run {outcome.run_id or '-'}"
                   + (f" ({outcome.reason})" if outcome.reason else ""))
    if outcome.status == "aborted":
        raise typer.Exit(EXIT_ABORTED)
    if outcome.status != "finished":
        raise typer.Exit(1)


def sweep(script: str = typer.Argument(..., help="a Python file; it reads keel.params() and "
                                                 "starts a keel run"),
          grid: list[str] = typer.Option(None, "--grid", help="NAME=V1,V2,... (repeatable)"),
          random: int = typer.Option(0, "--random", help="random draws (per grid combination)"),
          param: list[str] = typer.Option(None, "--param", help="NAME=DIST(...), "
                                          "e.g. lr=loguniform(1e-4,1e-1) (repeatable)"),
          seed: int = typer.Option(0, "--seed", help="seed of the random draws"),
          parallel: int = typer.Option(1, "--parallel", "-j", help="trials at once"),
          executor: str = typer.Option("local", "--executor", help="local or ray"),
          address: str = typer.Option(None, "--address", help="a Ray cluster, HOST:PORT"),
          metric: str = typer.Option(None, "--metric", help="the metric to rank trials by"),
          mode: str = typer.Option("max", "--mode", help="max or min"),
          early_stop: str = typer.Option(None, "--early-stop",
                                         help="stop bad trials early: median"),
          budget: str = BUDGET, abort_if: list[str] = RULE,
          experiment: str = typer.Option(None, "--experiment", "-e"),
          as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Run a script once per trial (a grid and/or random draws) in parallel, each a
    child run of the sweep's run; rank the trials by --metric."""
    from keel.cli.render import columns
    from keel.cli.workspace import workspace
    from keel.durations import parse_duration
    from keel.pipelines.sweep import sweep as do_sweep

    result = do_sweep(script, grid=grid or [], random=random, space=param or [], seed=seed,
                      parallel=parallel, executor=executor, address=address, metric=metric,
                      mode=mode, experiment=experiment, abort_if=tuple(abort_if or ()),
                      budget_s=parse_duration(budget, "--budget") if budget else None,
                      early_stop=early_stop, ws=workspace(create=True))
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    names = sorted({k for t in result.trials for k in t.params})
    rows = []
    for rank, trial in enumerate(result.ranked, 1):
        value = result.values.get(trial.number, math.nan)
        rows.append([str(rank), trial.run_id or "-", trial.status,
                     "-" if math.isnan(value) else f"{value:.6g}",
                     *[_shown(trial.params.get(n)) for n in names]])
    headers = ["rank", "run", "status", metric or "metric", *names]
    typer.echo(columns(headers, rows, right=frozenset({0, 3})))
    best = result.best
    typer.echo(f"sweep run {result.run_id}; best trial: "
               + (f"{best.run_id} ({metric} = {result.values[best.number]:.6g})"
                  if best else "none (no trial logged the metric)"))


def _shown(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
