"""``keel server`` and ``keel token create|list|revoke``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from keel.cli.render import columns, when
from keel.cli.workspace import workspace as _ws

console = Console()
token_app = typer.Typer(rich_markup_mode=None, no_args_is_help=True,
                        help="Access tokens of the team server (keel server).")


def server(store: str = typer.Option(None, "--store",
                                     help="metadata: a path or postgresql+psycopg://... "
                                          "(default: this workspace's)"),
           blobs: str = typer.Option(None, "--blobs",
                                     help="blob store: a folder or s3://bucket/prefix"),
           host: str = typer.Option("127.0.0.1", "--host"),
           port: int = typer.Option(5050, "--port"),
           workers: int = typer.Option(1, "--workers", help="worker processes"),
           no_auth: bool = typer.Option(False, "--no-auth",
                                        help="no tokens (refused unless on 127.0.0.1)"),
           root: Path = typer.Option(Path("."), "--root",
                                     help="the workspace folder (created if missing)")) -> None:
    """Serve this workspace to a team: MLflow's tracking REST API (point
    MLFLOW_TRACKING_URI at it) with tokens and roles."""
    from keel.server.run import check_auth, run_server

    check_auth(host, not no_auth)
    console.print(f"keel server on http://{host}:{port} (MLFLOW_TRACKING_URI=http://{host}:"
                  f"{port}; {'no auth' if no_auth else 'tokens required'}; docs at /docs)")
    run_server(root.resolve(), store, blobs, host, port, workers, auth=not no_auth)


@token_app.command()
def create(role: str = typer.Option(..., "--role", help="viewer | editor | validator | admin"),
           project: str = typer.Option("default", "--project"),
           expires: str = typer.Option(None, "--expires", help="lifetime, e.g. 30d"),
           description: str = typer.Option("", "--description")) -> None:
    """Create a token; its secret is printed once, alone on the last line."""
    from keel.durations import parse_duration
    from keel.server import tokens

    made = tokens.create(_ws(), role, project, description,
                         parse_duration(expires, "--expires") if expires else None)
    t = made.token
    expiry = f", expires {when(t.expires_at)}" if t.expires_at else ""
    console.print(f"token {t.id}: {t.role} in project {t.project}{expiry} (the secret is shown "
                  "once; store it now)")
    print(made.secret)


@token_app.command("list")
def list_() -> None:
    """Tokens (never their secrets): id, project, role, created, expiry, revoked."""
    rows = [[t.id, t.project, t.role, when(t.created_at), when(t.expires_at) if t.expires_at
             else "-", when(t.revoked_at) if t.revoked_at else "-", t.description]
            for t in _ws().store.list_tokens()]
    console.print(columns(["id", "project", "role", "created", "expires", "revoked",
                           "description"], rows) if rows else "no tokens")


@token_app.command()
def revoke(token: str = typer.Argument(..., help="the token's id, or its secret")) -> None:
    """Revoke a token: the next request that carries it is refused."""
    from keel.server import tokens

    done = tokens.revoke(_ws(), token)
    console.print(f"revoked token {done.id} ({done.role} in {done.project})")
