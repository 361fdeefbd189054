"""The store on the wire: which :class:`~keel.store.protocol.Store` methods the team
server answers at ``/api/v1/store/<method>``, and how their arguments, results
and errors travel as JSON.

Both sides derive everything from the protocol's own signatures, so the API
cannot drift from the store: a method's arguments are a JSON object of its
parameters, checked on the server by a pydantic model built from its type
hints (a wrong type is a 422 naming the field); its result is its return
value as JSON, rebuilt by the client into the same entities. NaN and
infinities travel as JSON's common ``NaN``/``Infinity`` extension, since
metrics keep them.

Garbage collection (``RetentionStore``), token lookups by hash and the audit
writer are not on the wire: gc runs where the blobs are, and the other two are
the server's own business.
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
import json
import typing
from typing import Any

from keel.errors import InvalidInput

PREFIX = "/api/v1/store/"

# The methods served, by noun. What a token needs for each, and how its
# project scopes it, is the server's table (server/store_api.py).
RUNS = ("create_experiment", "get_experiment", "get_or_create_experiment", "list_experiments",
        "set_experiment_lifecycle", "create_run", "get_run", "end_run", "reopen_run",
        "set_run_lifecycle", "child_runs", "resolve_run_id", "write_batch", "spool_offset",
        "metric_history", "metric_keys", "last_steps", "add_artifact", "list_artifacts",
        "search_runs")
DATASETS = ("add_dataset_version", "get_dataset_version", "list_dataset_versions",
            "set_dataset_version_lifecycle", "list_datasets", "link_run_dataset",
            "runs_of_dataset_version", "datasets_of_run")
REGISTRY = ("create_model_version", "get_registered_model", "list_registered_models",
            "get_model_version", "list_model_versions", "model_versions_of_run",
            "set_model_alias", "remove_model_alias", "record_model_event",
            "set_model_version_lifecycle", "set_model_tag", "set_model_description",
            "model_history")
STEPS = ("cached_step", "last_step", "record_step")
DEPLOYMENTS = ("create_deployment", "get_deployment", "deployment_revision",
               "list_deployments", "update_deployment", "deployment_history",
               "add_deployment_stats", "deployment_stats", "compact_deployment_stats",
               "add_inference_segment", "inference_segments", "add_feedback", "feedback_for")
MONITORING = ("add_monitor_record", "get_monitor_record", "list_monitor_records", "add_alert",
              "list_alerts", "add_automation_action", "get_automation_action",
              "list_automation_actions")
TOKENS = ("create_token", "list_tokens", "revoke_token", "list_audit")
METHODS = RUNS + DATASETS + REGISTRY + STEPS + DEPLOYMENTS + MONITORING + TOKENS

class Signature(typing.NamedTuple):
    """One method as the wire sees it."""

    parameters: dict[str, tuple[Any, Any]]  # name -> (type, default or inspect.Parameter.empty)
    returns: Any


@functools.cache
def signature(method: str) -> Signature:
    """The parameters and return type of a served method, read from the protocol."""
    from keel.store.protocol import Store

    if method not in METHODS:
        raise InvalidInput(f"the store method {method!r} is not served",
                           hint="see /api/v1/openapi.json for the methods a server answers")
    function = getattr(Store, method)
    hints = typing.get_type_hints(function)
    parameters = {}
    for name, parameter in inspect.signature(function).parameters.items():
        if name == "self":
            continue
        parameters[name] = (concrete(hints[name]), parameter.default)
    return Signature(parameters, concrete(hints.get("return", type(None))))


def concrete(hint: Any) -> Any:
    """``hint`` with abstract collections made lists, which JSON and pydantic both
    hold (an ``Iterable`` would be validated lazily, after the call returned)."""
    origin = typing.get_origin(hint)
    if origin is None:
        return hint
    args = tuple(concrete(arg) for arg in typing.get_args(hint))
    if origin in (collections.abc.Sequence, collections.abc.Iterable,
                  collections.abc.Collection):
        return list[args[0]]  # type: ignore[valid-type]
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return typing.Union[args]  # noqa: UP007 (built from a tuple)
    return origin[args] if args else hint


@functools.cache
def adapter(hint: Any) -> Any:
    """A (cached) pydantic TypeAdapter for ``hint``."""
    from pydantic import TypeAdapter

    return TypeAdapter(hint)


def dumps(value: Any, hint: Any) -> bytes:
    """``value`` (of type ``hint``) as JSON bytes, NaN and infinities kept."""
    return json.dumps(adapter(hint).dump_python(value, mode="json"),
                      separators=(",", ":")).encode()


def loads(data: bytes, hint: Any) -> Any:
    """JSON bytes back into a value of type ``hint``."""
    return adapter(hint).validate_python(json.loads(data))


def encode_arguments(method: str, arguments: dict[str, Any]) -> bytes:
    """A call's arguments as the JSON body of its request."""
    parameters = signature(method).parameters
    return json.dumps({name: adapter(parameters[name][0]).dump_python(value, mode="json")
                       for name, value in arguments.items()}, separators=(",", ":")).encode()
