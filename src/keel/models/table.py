"""Reading a table to score: a dataset version (``holdout@3``, ``holdout@3:test.csv``)
or a CSV/Parquet file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from keel.blobs.digest import hash_file
from keel.data.version import get_version
from keel.entities import DatasetVersion
from keel.errors import InvalidInput, NotFound
from keel.workspace import Workspace

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


@dataclass(frozen=True)
class Table:
    """A loaded table and where it came from (for lineage)."""

    frame: pd.DataFrame
    source: str                          # the reference as given
    digest: str                          # file digest
    version: DatasetVersion | None = None


def read_table(reference: str, ws: Workspace) -> Table:
    """A table from a dataset version or a local file; errors name the fix."""
    from keel.data.cache import cached_copy

    path = Path(reference)
    if path.is_file():
        return Table(_read(path), reference, hash_file(path))
    ref, _, inner = reference.partition(":")
    if "@" not in ref and not inner:
        raise NotFound(f"{reference} is neither a file nor a dataset version",
                       hint="pass a CSV/Parquet file or NAME@VERSION (NAME@VERSION:FILE for "
                            "one file of a folder)")
    version = get_version(ws, ref)
    local = cached_copy(ws, version)
    if local.is_dir():
        tables = sorted(p for p in local.rglob("*") if p.suffix.lower() in TABLE_SUFFIXES)
        if inner:
            local = local / inner
            if not local.is_file():
                raise NotFound(f"{version.ref} has no file {inner!r}",
                               hint="files: " + ", ".join(str(p.relative_to(local.parent))
                                                          for p in tables[:10]))
        elif len(tables) == 1:
            local = tables[0]
        else:
            names = ", ".join(p.relative_to(local).as_posix() for p in tables[:10]) or "none"
            raise InvalidInput(f"{version.ref} holds {len(tables)} tables ({names})",
                               hint=f"name one: {version.ref}:FILE")
    return Table(_read(local), reference, hash_file(local), version)


def _read(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path)
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    raise InvalidInput(f"{path} is not a CSV or Parquet file",
                       hint="convert it, or pass a .csv/.parquet file")


def split_label(frame: pd.DataFrame, label: str | None, model_columns: list[str]
                ) -> tuple[pd.DataFrame, pd.Series, str]:
    """Features and label; the label column defaults to the one column the model
    does not take, or to ``target``/``label``."""
    if label is None:
        spare = [c for c in frame.columns if str(c) not in model_columns]
        candidates = spare if len(spare) == 1 else \
            [c for c in ("target", "label", "y") if c in frame.columns]
        if not candidates:
            raise InvalidInput("cannot tell which column holds the label",
                               hint="pass --label COLUMN (columns: "
                                    + ", ".join(map(str, frame.columns[:12])) + ")")
        label = str(candidates[0])
    if label not in frame.columns:
        raise InvalidInput(f"label column {label!r} is not in the data",
                           hint="columns: " + ", ".join(map(str, frame.columns[:20])))
    return frame.drop(columns=label), frame[label], label
