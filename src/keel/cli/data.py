"""``keel data add|status|diff|log|checkout|push|pull|show|profile|list``."""

from __future__ import annotations

import json
import math
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from keel.cli.render import size, user_text, when
from keel.names import printable

app = typer.Typer(rich_markup_mode=None, no_args_is_help=True,
                  help="Version datasets, compare and move them.")
console = Console()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return "-" if value is None else str(value)


@app.command()
def add(path: Path = typer.Argument(..., help="file or folder to snapshot"),
        name: str = typer.Option(..., "--name", "-n", help="dataset name"),
        message: str = typer.Option("", "--message", "-m", help="what changed"),
        check: bool = typer.Option(False, "--check", help="validate the checks declared in "
                                                          "keel.toml before creating the version"),
        allow_failing: bool = typer.Option(False, "--allow-failing",
                                           help="create the version even if checks fail"),
        follow_symlinks: bool = typer.Option(False, "--follow-symlinks",
                                             help="also version the files that symlinks in the "
                                                  "folder point to outside it (refused "
                                                  "otherwise)")
        ) -> None:
    """Snapshot PATH as the next version of a dataset (nothing new if unchanged)."""
    import keel.data
    from keel.cli.progress import progress_bar
    from keel.errors import ChecksFailed

    try:
        result = keel.data.add(path, name, message, check=check, allow_failing=allow_failing,
                               progress=progress_bar(), follow_symlinks=follow_symlinks)
    except ChecksFailed as exc:
        _print_reports(exc.reports)
        raise
    if result.checks:
        _print_reports(result.checks)
    v = result.version
    if result.created:
        console.print(Text("Created "), Text(v.ref, style="bold"),
                      f": {v.files:,} files, {size(v.bytes)}",
                      *((" — ", user_text(v.message)) if v.message else ()), sep="")
        return
    latest = keel.data.get(v.dataset)
    newer = f" (the latest is {latest.ref})" if latest.ref != v.ref else ""
    console.print("No changes: ", user_text(str(path)), " is identical to ",
                  Text(v.ref, style="bold"), f"{newer}; no new version created.", sep="")


def _print_reports(reports: list[Any]) -> None:
    from rich.table import Table
    for report in reports:
        table = Table("check", "result", "failing rows", "examples",
                      title=f"quality checks: {report.source} ({report.rows:,} rows)")
        for r in report.results:
            result = Text("pass", style="green") if r.passed else Text("FAIL", style="bold red")
            examples = "; ".join(json.dumps(e, default=str) for e in r.examples)
            table.add_row(r.check, result, f"{r.failing:,}", examples or r.message)
        console.print(table)


@app.command()
def status(name: str = typer.Argument(..., help="dataset name (compares with the version "
                                                "checked out or added there) or NAME@N"),
           path: Path = typer.Option(None, help="folder to compare (default: where the data "
                                                "was added from)")) -> None:
    """Files added, removed or modified since the version the folder holds."""
    import keel.data

    changes = keel.data.status(name, path)
    against = changes.ref or name
    if not changes.changed:
        console.print(Text(f"{against}: up to date, nothing changed."))
        return
    console.print(Text(f"compared with {against}:"))
    for label, style, items in (("added", "green", changes.added),
                                ("removed", "red", changes.removed),
                                ("modified", "yellow", changes.modified)):
        for item in items:  # names on disk may hold escape sequences: shown escaped
            console.print(Text(f"  {label:<9}{printable(item)}", style=style))
    console.print(f"{len(changes.added)} added, {len(changes.removed)} removed, "
                  f"{len(changes.modified)} modified")


@app.command()
def diff(old: str = typer.Argument(..., help="NAME@N"),
         new: str = typer.Argument(..., help="NAME@M"),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """File changes and, for CSV/Parquet, row count, schema and statistic changes."""
    import keel.data

    result = keel.data.diff(old, new)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    files = result.files
    console.print(Text(f"{result.old.ref} -> {result.new.ref}", style="bold"),
                  f": {len(files.added)} added, {len(files.removed)} removed, "
                  f"{len(files.modified)} modified", sep="")
    for label, items in (("+", files.added), ("-", files.removed), ("~", files.modified)):
        for item in items[:50]:  # file names are shown literally, never as markup
            console.print(Text(f"  {label} {printable(item)}"))
    for path, change in result.tables.items():
        _print_table_change(path, change)


def _print_table_change(path: str, change: Any) -> None:
    from rich.table import Table
    data = change.to_dict()
    console.print("\n", user_text(path, style="bold"),
                  f": rows {data.get('rows_old')} -> {data.get('rows_new')}", sep="")
    for key in ("added_columns", "removed_columns"):
        if data.get(key):
            console.print(Text(f"  {key.replace('_', ' ')}: "
                               f"{printable(', '.join(map(str, data[key])))}"))
    for col, (old_t, new_t) in (data.get("type_changes") or {}).items():
        console.print(Text(f"  type of {printable(str(col))}: {old_t} -> {new_t}"))
    table = Table("column", "mean", "std", "nulls", "shift", "moved")
    # Moved columns first; columns whose statistics did not change at all are
    # only counted, so a wide table's diff shows what matters.
    same = [c for c in change.columns if not c.moved and c.mean_old == c.mean_new
            and c.std_old == c.std_new and c.null_fraction_old == c.null_fraction_new]
    shown = sorted((c for c in change.columns if c not in same), key=lambda c: not c.moved)
    for col in shown:
        c = col.to_dict()
        table.add_row(
            user_text(str(c["name"])),
            f"{_fmt(c.get('mean_old'))} -> {_fmt(c.get('mean_new'))}",
            f"{_fmt(c.get('std_old'))} -> {_fmt(c.get('std_new'))}",
            f"{_fmt(c.get('null_fraction_old'))} -> {_fmt(c.get('null_fraction_new'))}",
            f"{c.get('score_name', '')} {_fmt(c.get('score'))}",
            Text("yes", style="bold red") if c.get("moved") else Text("no", style="dim"))
    console.print(table)
    if same:
        console.print(f"  {len(same)} other column(s) unchanged")


@app.command()
def log(name: str) -> None:
    """Every version of a dataset."""
    from rich.table import Table

    import keel.data

    versions = keel.data.log(name)  # checks the name first
    table = Table("version", "created", "user", "files", "size", "checks", "message",
                  title=f"dataset {printable(name)}")
    for v in versions:
        checks = {None: "-", True: "[green]pass", False: "[red]fail"}[v.checks_passed]
        table.add_row(user_text(v.ref), when(v.created_at), user_text(v.user), f"{v.files:,}",
                      size(v.bytes), checks, user_text(v.message))
    console.print(table)


@app.command()
def delete(ref: str = typer.Argument(..., help="NAME@N"),
           force: bool = typer.Option(False, "--force",
                                      help="delete even if live runs read or wrote it")) -> None:
    """Delete a version (restorable; `keel gc` frees its blobs after the retention)."""
    import keel.data

    version = keel.data.delete(ref, force=force)
    console.print("Deleted ", user_text(version.ref), " (undo: keel data restore ",
                  user_text(version.ref), ")", sep="")


@app.command()
def restore(ref: str = typer.Argument(..., help="NAME@N")) -> None:
    """Restore a deleted version."""
    import keel.data

    version = keel.data.restore(ref)
    console.print("Restored ", user_text(version.ref), sep="")


@app.command("list")
def list_() -> None:
    """Every dataset with its latest version."""
    from rich.table import Table

    from keel.cli.workspace import workspace

    table = Table("dataset", "latest", "created", "files", "size")
    for v in workspace().store.list_datasets():
        # Names come from the store, which other tools and older keels also wrote.
        table.add_row(user_text(v.dataset), user_text(v.ref), when(v.created_at),
                      f"{v.files:,}", size(v.bytes))
    console.print(table)


@app.command()
def show(ref: str = typer.Argument(..., help="NAME@N"),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """A version's details and every run that read or wrote it."""
    from rich.table import Table

    import keel.data
    from keel.cli.workspace import workspace

    ws = workspace()
    v = keel.data.get(ref)
    links = ws.store.runs_of_dataset_version(v.id)
    if as_json:
        typer.echo(json.dumps(v.to_dict() | {"runs": [{"run_id": r, "role": role}
                                                      for r, role in links]}, indent=2))
        return
    console.print(user_text(v.ref, style="bold"), f" — {v.files:,} files, {size(v.bytes)}, "
                  f"added {when(v.created_at)} by ", user_text(v.user), " from ",
                  user_text(v.source), sep="")
    if v.message:
        console.print("  ", user_text(v.message), sep="")
    console.print(f"  manifest {v.manifest_digest}")
    table = Table("run", "name", "experiment", "role", "status", title="runs")
    for run_id, role in links:
        run = ws.store.get_run(run_id)
        table.add_row(user_text(run.id[:12]), user_text(run.name), user_text(run.experiment),
                      user_text(role), run.status)
    console.print(table)


@app.command()
def profile(ref: str = typer.Argument(..., help="NAME@N")) -> None:
    """Per-column statistics of every CSV/Parquet file in a version."""
    from rich.table import Table

    import keel.data

    found = keel.data.profiles(ref)
    if not found:
        console.print(f"{ref} has no CSV or Parquet files to profile.")
    for path, prof in found.items():
        rows = prof.summary_rows()
        table = Table(*rows[0].keys() if rows else ["column"],
                      title=Text(f"{printable(path)}: {prof.rows:,} rows"))
        for row in rows:  # column names and values come from the data: never markup
            table.add_row(*[user_text(_fmt(v)) for v in row.values()])
        console.print(table)


class LinkType(StrEnum):
    """How checkout places files from the blob store (see keel.data.link)."""

    copy = "copy"
    reflink = "reflink"
    hardlink = "hardlink"
    symlink = "symlink"


@app.command()
def checkout(ref: str = typer.Argument(..., help="NAME@N"),
             dest: Path = typer.Argument(None, help="where to write (default: where the "
                                                    "data was added from)"),
             force: bool = typer.Option(False, "--force", help="overwrite local changes"),
             link: LinkType = typer.Option(
                 None, "--link", case_sensitive=False,
                 help="copy, reflink, hardlink or symlink (default: reflink where the "
                      "filesystem supports it, else copy). Hard- and symlinked files are "
                      "the store's read-only blobs: check out again with --link copy "
                      "before editing them, never chmod them")) -> None:
    """Write a version's files back, all or none; refuses to overwrite local edits
    without --force."""
    import keel.data
    from keel.cli.progress import progress_bar

    result = keel.data.checkout(ref, dest, force=force, progress=progress_bar(),
                                link=link.value if link is not None else None)
    console.print(Text("Checked out "), Text(result.version.ref, style="bold"), " to ",
                  user_text(str(result.dest)),
                  f": {len(result.written):,} written, {len(result.removed):,} removed, "
                  f"{result.unchanged:,} already up to date", sep="")


@app.command()
def push(names: list[str] = typer.Argument(None, help="datasets (default: all)"),
         remote: str = typer.Option(None, "--remote", "-r",
                                    help="fsspec URL or folder (default: keel.toml [remote])")
         ) -> None:
    """Send dataset versions to a remote: only blobs it lacks, in parallel."""
    import keel.data
    from keel.cli.progress import progress_bar

    result = keel.data.push(remote, names or None, progress=progress_bar(unit="blobs"))
    console.print(f"Pushed {len(result.versions)} version(s) to {result.remote}: "
                  f"{result.blobs_sent} blobs sent ({size(result.bytes_sent)}), "
                  f"{result.blobs_present} already there")


@app.command()
def pull(names: list[str] = typer.Argument(None, help="datasets (default: all)"),
         remote: str = typer.Option(None, "--remote", "-r",
                                    help="fsspec URL or folder (default: keel.toml [remote])")
         ) -> None:
    """Fetch dataset versions from a remote; every blob is verified on arrival."""
    import keel.data
    from keel.cli.progress import progress_bar

    result = keel.data.pull(remote, names or None, progress=progress_bar(unit="blobs"))
    console.print(f"Pulled {len(result.versions)} new version(s) from {result.remote}: "
                  f"{result.blobs_sent} blobs fetched ({size(result.bytes_sent)}), "
                  f"{result.blobs_present} already here")
