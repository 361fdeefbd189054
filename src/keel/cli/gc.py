"""``keel gc``: permanently remove what was deleted long ago, and blobs nothing uses."""

from __future__ import annotations

import json

import typer

from keel.cli.render import plural, size


def gc(dry_run: bool = typer.Option(False, "--dry-run",
                                    help="show what would be removed and how many bytes"),
       older_than: str = typer.Option("30d", "--older-than",
                                      help="purge runs and model versions deleted longer "
                                           "ago than this (e.g. 30d, 12h, 0)"),
       grace: str = typer.Option("1h", "--grace",
                                 help="keep blobs written more recently than this, whatever "
                                      "refers to them"),
       remote: str = typer.Option(None, "--remote",
                                  help="also sweep this data remote (a URL, or 'default' for "
                                       "the one configured)"),
       as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Purge runs and model versions deleted over --older-than ago, then remove blobs
    and packs nothing live refers to (locally, and on --remote)."""
    from keel.cli.workspace import workspace
    from keel.durations import parse_duration
    from keel.gc import collect

    report = collect(workspace(), older_than_s=parse_duration(older_than, "--older-than"),
                     grace_s=parse_duration(grace, "--grace"), dry_run=dry_run, remote=remote)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    would = "would be " if dry_run else ""
    lines = [f"runs {would}purged: {len(report.purged_runs)}"
             + (f" (kept {len(report.kept_registered_runs)} deleted runs that model versions "
                "were registered from)" if report.kept_registered_runs else ""),
             f"model versions {would}purged: {len(report.purged_versions)}"
             + (f" ({', '.join(report.purged_versions[:5])})" if report.purged_versions else ""),
             f"dataset versions {would}purged: {len(report.purged_datasets)}"
             + (f" ({', '.join(report.purged_datasets[:5])})" if report.purged_datasets else "")]
    for sweep in report.sweeps:
        parts = [plural(sweep.count("blob"), "loose blob"),
                 plural(sweep.count("pack"), "pack") + " removed",
                 plural(sweep.count("repack"), "pack") + " rewritten",
                 plural(sweep.count("temporary"), "temporary file")]
        lines.append(f"{sweep.store}: {', '.join(parts)} ({size(sweep.bytes)})"
                     + (f"; kept {plural(sweep.kept_young, 'unreferenced blob')} younger "
                        f"than {grace}" if sweep.kept_young else ""))
        if dry_run:
            lines += [f"  {item.kind:<9} {size(item.bytes):>10}  {item.path}"
                      for item in sweep.items[:50]]
            if len(sweep.items) > 50:
                lines.append(f"  ... and {len(sweep.items) - 50} more (--json lists all)")
    headline = f"would free {size(report.bytes)} (dry run: nothing removed)" if dry_run \
        else f"freed {size(report.bytes)}"
    typer.echo(f"keel gc {headline}")
    for line in lines:
        typer.echo("  " + line)
