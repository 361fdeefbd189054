"""What ``/api/v1/store`` checks before a call reaches the store.

In one process the store's callers are keel's own domain functions, which
check names, keys and values before they store them (``keel.names``,
``tracking/keys.py``); the store trusts them. Over the network the caller is
anyone with a token, so the server runs the same checks on the arguments of
every write that carries user text: a remote client can store nothing the
Python API would have refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from keel.blobs.digest import is_digest
from keel.entities import ACTIVE, DELETED, RUN_STATUSES
from keel.errors import InvalidInput
from keel.models.uri import check_alias
from keel.names import check_identifier, check_label
from keel.store import schema
from keel.tracking.keys import (
    MAX_STEP,
    MIN_STEP,
    check_artifact_path,
    check_key,
    check_metric_value,
    check_step,
    param_text,
)

_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# What a caller may set on a new dataset version: its columns but the keys.
VERSION_FIELDS = frozenset(schema.dataset_versions.c.keys()) - {"id", "dataset_id", "version"}


def check_arguments(method: str, kwargs: dict[str, Any]) -> None:
    """Refuse arguments of ``method`` that the domain layer would have refused."""
    rule = RULES.get(method)
    if rule is not None:
        rule(kwargs)


def _lifecycle(value: Any) -> None:
    if value not in (ACTIVE, DELETED):
        raise InvalidInput(f"lifecycle must be {ACTIVE!r} or {DELETED!r}, got {value!r}"[:120])


def _status(value: Any) -> None:
    if value not in RUN_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(RUN_STATUSES)}, got "
                           f"{value!r}"[:160])


def _time(value: Any, what: str) -> None:
    if value is not None and not MIN_STEP <= value <= MAX_STEP:
        raise InvalidInput(f"{what} {value} does not fit in 64 bits")


def _digest(value: Any, what: str) -> None:
    if not is_digest(value):
        raise InvalidInput(f"{what} {str(value)[:80]!r} is not a blob digest",
                           hint="64 lowercase hex characters (BLAKE3)")


def _tags(tags: Any) -> None:
    for key, value in (tags or {}).items():
        param_text(check_key(key, "tag"), value)


def _experiment(kw: dict[str, Any]) -> None:
    check_label(kw.get("name"), "experiment name")
    _tags(kw.get("tags"))


def _create_run(kw: dict[str, Any]) -> None:
    if kw.get("name"):
        check_label(kw["name"], "run name")
    if kw.get("run_id") is not None and not _RUN_ID.fullmatch(kw["run_id"]):
        raise InvalidInput(f"bad run id {kw['run_id'][:70]!r}",
                           hint="letters, digits, '_' and '-', at most 64 characters")
    _time(kw.get("start_time"), "start_time")
    _tags(kw.get("tags"))
    for artifact in kw.get("artifacts") or ():
        _artifact({"artifact": artifact})


def _write_batch(kw: dict[str, Any]) -> None:
    for key, value in kw.get("params") or ():
        param_text(check_key(key, "param"), value)
    for key, value in kw.get("tags") or ():
        param_text(check_key(key, "tag"), value)
    for point in kw.get("metrics") or ():
        check_metric_value(check_key(point.key, "metric"), point.value)
        check_step(point.step)
        _time(point.timestamp, "timestamp")
    if kw.get("end") is not None:
        _status(kw["end"].status)
        _time(kw["end"].end_time, "end_time")
    if kw.get("spool") is not None:
        check_label(kw["spool"], "spool name")


def _end_run(kw: dict[str, Any]) -> None:
    _status(kw.get("status"))
    _time(kw.get("end_time"), "end_time")


def _artifact(kw: dict[str, Any]) -> None:
    artifact = kw["artifact"]
    check_artifact_path(artifact.path)
    _digest(artifact.digest, "artifact digest")
    if artifact.size < 0:
        raise InvalidInput(f"artifact size {artifact.size} is negative")


def _dataset_version(kw: dict[str, Any]) -> None:
    check_identifier(kw.get("name"), "dataset name", "transactions")
    fields = kw.get("fields") or {}
    unknown = set(fields) - VERSION_FIELDS
    if unknown:
        raise InvalidInput(f"not fields of a dataset version: {sorted(unknown)}"[:200],
                           hint=f"known: {', '.join(sorted(VERSION_FIELDS))}")
    _digest(fields.get("manifest_digest"), "manifest_digest")


def _model_version(kw: dict[str, Any]) -> None:
    check_identifier(kw.get("name"), "model name", "churn")
    _digest(kw.get("package_digest"), "package_digest")
    _tags(kw.get("tags"))


def _alias(kw: dict[str, Any]) -> None:
    check_alias(kw.get("alias"))  # type: ignore[arg-type]


def _model_tag(kw: dict[str, Any]) -> None:
    param_text(check_key(kw.get("key"), "tag"), kw.get("value"))


RULES: dict[str, Callable[[dict[str, Any]], None]] = {
    "create_experiment": _experiment,
    "get_or_create_experiment": _experiment,
    "set_experiment_lifecycle": lambda kw: _lifecycle(kw.get("lifecycle")),
    "create_run": _create_run,
    "end_run": _end_run,
    "set_run_lifecycle": lambda kw: _lifecycle(kw.get("lifecycle")),
    "write_batch": _write_batch,
    "add_artifact": _artifact,
    "add_dataset_version": _dataset_version,
    "set_dataset_version_lifecycle": lambda kw: _lifecycle(kw.get("lifecycle")),
    "create_model_version": _model_version,
    "set_model_alias": _alias,
    "remove_model_alias": _alias,
    "set_model_version_lifecycle": lambda kw: _lifecycle(kw.get("lifecycle")),
    "set_model_tag": _model_tag,
}
