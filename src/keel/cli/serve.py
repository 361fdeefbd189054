"""``keel serve``: a model server for one model or a deployment, or its container context."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)


def serve(model: str = typer.Argument(None, help="models:/churn@champion, churn/3, "
                                                 "runs:/<id>/model or a package folder"),
          deployment: str = typer.Option(None, "--deployment", "-d",
                                         help="serve a deployment (keel deploy create), "
                                              "following its changes without a restart"),
          host: str = typer.Option("127.0.0.1", "--host"),
          port: int = typer.Option(8080, "--port", "-p"),
          workers: int = typer.Option(1, "--workers", "-w", help="worker processes"),
          trust: bool = typer.Option(False, "--trust",
                                     help="allow packages that execute code (pickles)"),
          max_body_mb: float = typer.Option(16.0, "--max-body-mb",
                                            help="largest request body accepted (413 above)"),
          sample: float = typer.Option(None, "--sample", help="share of predictions written "
                                       "to the inference log (default: the deployment's, 1)"),
          name: str = typer.Option(None, "--name", help="the inference log's deployment name "
                                   "when serving one model (default: the model's name)"),
          version_label: str = typer.Option(None, "--version-label",
                                            help="the version named in answers and the log "
                                                 "when serving a package folder (churn/2)"),
          export: Path = typer.Option(None, "--export", help="write a container build context "
                                      "(Dockerfile, pinned requirements, the model) to this "
                                      "folder instead of serving"),
          poll_seconds: float = typer.Option(1.0, "--poll-seconds", hidden=True),
          stats_seconds: float = typer.Option(2.0, "--stats-seconds", hidden=True),
          log_flush_seconds: float = typer.Option(5.0, "--log-flush-seconds", hidden=True),
          ) -> None:
    """Serve predictions over HTTP: POST /predict, /feedback; GET /health, /ready, /metrics,
    /docs."""
    from keel.cli.workspace import workspace
    from keel.errors import InvalidInput
    from keel.serving.runtime import ServeOptions
    from keel.serving.server import ServeTarget
    from keel.serving.server import serve as run_server

    if (model is None) == (deployment is None):
        raise InvalidInput("name what to serve: a model (keel serve models:/churn@champion) "
                           "or a deployment (keel serve --deployment prod), not both")
    if sample is not None and not 0 <= sample <= 1:
        raise InvalidInput(f"--sample must be between 0 and 1, got {sample:g}")
    if max_body_mb <= 0:
        raise InvalidInput("--max-body-mb must be positive")
    ws = workspace()
    if export is not None:
        from keel.serving.export import export_context

        if model is None:
            raise InvalidInput("--export packages one model: keel serve --export DIR "
                               "models:/churn@champion")
        done = export_context(model, export, ws=ws, trust=trust)
        typer.echo(f"Wrote a build context for {done.version} to {done.folder}")
        typer.echo(f"  docker build -t {done.image} {done.folder}")
        typer.echo(f"  docker run -p 8080:8080 {done.image}")
        return
    options = ServeOptions(trust=trust, max_body_bytes=int(max_body_mb * 1024 * 1024),
                           poll_seconds=poll_seconds, stats_seconds=stats_seconds,
                           log_flush_seconds=log_flush_seconds, sample=sample)
    # Workers open the workspace themselves, from the same folder and environment.
    target = ServeTarget(root=str(ws.root), deployment=deployment, model=model, name=name,
                         label=version_label)

    def ready(runtime: object) -> None:
        what = f"deployment {deployment}" if deployment else model
        console.print(f"Serving {what} on [bold]http://{host}:{port}[/] with {workers} "
                      f"worker(s): POST /predict, /feedback; GET /health, /ready, /metrics, "
                      f"/docs. Ctrl-C stops (requests drain, the inference log is flushed).")

    run_server(target, options, host=host, port=port, workers=workers, ready=ready)
