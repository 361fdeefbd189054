"""Stored rows to entities, and the choices made over them.

Shared by the SQLAlchemy store and the standard-library reader
(``sqlite_reader.py``), so both answer a read with the same entities and the
same errors. A row is anything that gives its values by column name
(SQLAlchemy's ``row._mapping``, a ``sqlite3.Row``).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from keel.entities import ACTIVE, DatasetVersion, Run, StepRecord
from keel.errors import NotFound


class Row(Protocol):
    """A stored row: its values by column name."""

    def __getitem__(self, column: str, /) -> Any: ...


def null_to_nan(value: float | None) -> float:
    """A stored metric value: NULL stands for NaN (SQLite cannot store NaN)."""
    return float("nan") if value is None else value


def run(row: Row, params: dict[str, str], metrics: dict[str, float],
        tags: dict[str, str]) -> Run:
    """A run from its ``runs`` row (with its experiment's name as ``experiment``)."""
    return Run(id=row["id"], experiment_id=row["experiment_id"], experiment=row["experiment"],
               name=row["name"], status=row["status"], start_time=row["start_time"],
               end_time=row["end_time"], user=row["user"], parent_id=row["parent_id"],
               lifecycle=row["lifecycle"], error=row["error"], params=params,
               metrics=metrics, tags=tags)


def dataset_version(row: Row) -> DatasetVersion:
    """A dataset version from its row (with the dataset's name as ``dataset_name``)."""
    passed = row["checks_passed"]
    return DatasetVersion(
        id=row["id"], dataset=row["dataset_name"], version=row["version"],
        manifest_digest=row["manifest_digest"], files=row["files"], bytes=row["bytes"],
        message=row["message"], created_at=row["created_at"], user=row["user"],
        source=row["source"], checks_digest=row["checks_digest"],
        checks_passed=None if passed is None else bool(passed),
        profiles_digest=row["profiles_digest"], lifecycle=row["lifecycle"])


def step_record(row: Row) -> StepRecord:
    """A pipeline step cache entry from its row."""
    return StepRecord(key=row["key"], pipeline=row["pipeline"], step=row["step"],
                      run_id=row["run_id"], outputs=json.loads(row["outputs"]),
                      components=json.loads(row["components"]), created_at=row["created_at"])


def missing_dataset(name: str) -> NotFound:
    """What asking for a dataset that does not exist gets (and, on the team server,
    one of another project, word for word)."""
    return NotFound(f"no dataset {name!r}",
                    hint=f"create it with `keel data add PATH --name {name}`; "
                         "see all with `keel data list`")


def dataset_versions(found: list[DatasetVersion], name: str,
                     include_deleted: bool) -> list[DatasetVersion]:
    """Every version of dataset ``name`` (``found``, oldest first), the deleted ones
    only if asked; NotFound when the dataset does not exist."""
    if not found:
        raise missing_dataset(name)
    return found if include_deleted else [v for v in found if v.lifecycle == ACTIVE]


def pick_dataset_version(found: list[DatasetVersion], name: str,
                         version: int | None) -> DatasetVersion:
    """``name@version`` among every version of the dataset (``found``, oldest first,
    deleted ones too), or the latest live one when ``version`` is None."""
    live = [v for v in dataset_versions(found, name, True) if v.lifecycle == ACTIVE]
    if version is None:
        if not live:
            raise NotFound(f"every version of dataset {name!r} is deleted",
                           hint=f"restore one with `keel data restore {name}@N`")
        return live[-1]
    for item in found:
        if item.version == version:
            if item.lifecycle != ACTIVE:
                raise NotFound(f"{item.ref} is deleted",
                               hint=f"restore it with `keel data restore {item.ref}`")
            return item
    raise NotFound(f"dataset {name!r} has no version {version}",
                   hint=f"versions: {', '.join(str(v.version) for v in live)} "
                        f"(see `keel data log {name}`)")
