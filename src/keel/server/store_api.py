"""keel's own REST API, ``/api/v1``: the store's methods and the blob store, for
``KEEL_STORE=http://host:5050`` clients (``store/http_store.py``).

Each served store method is ``POST /api/v1/store/<method>`` with its arguments
as a JSON object; its request model is built from the method's signature in
the store protocol (``store/wire.py``), so the OpenAPI spec documents every
field and a wrong type is refused naming it. The table below says what role
each method needs and how the token's project scopes it: runs and
experiments, datasets, registered models and deployments answer within the
project (another project's are missing ones, word for word; see owned.py),
while monitoring, feedback and the step cache belong to the default project.

Blobs travel through the server: ``PUT /api/v1/blobs/<digest>`` streams the
bytes to a temporary file while hashing them and stores them only if they
have that digest; ``GET`` streams them back, verified against it. Blobs are
content-addressed and shared by every project: reading one needs its
digest, which only metadata a token can see gives out.

This module deliberately has no ``from __future__ import annotations``: the
routes are made at run time from models built at run time, and FastAPI reads
their annotations as objects.
"""

import functools
import inspect
import os
import tempfile
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, create_model
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from keel.blobs import frames
from keel.blobs.digest import CHUNK, is_digest
from keel.blobs.pack import PACKED_BELOW
from keel.errors import AlreadyExists, Conflict, CorruptData, InvalidInput, NotFound
from keel.server.owned import DEPLOYMENT_METHODS, owned_call
from keel.server.scope import Scope, Scoped
from keel.server.store_checks import check_arguments
from keel.store import wire

if TYPE_CHECKING:
    from keel.workspace import Workspace

MAX_UPLOAD_BYTES = 2 * 1024**3
MAX_DIGESTS = 100_000  # per /blobs/missing or /blobs/fetch request
MAX_BATCH_BYTES = 256 * 1024**2  # per /blobs/pack request (clients send 8 MiB)

# What each method needs: the least role, and how the request's project scopes it.
#   run:        its run_id must be of the project
#   experiment: its experiment (id or name) must be of the project
#   project:    answered within the project (the handler below says how)
#   owned:      a dataset's or registered model's: the project's own only (owned.py)
#   default:    the default project's things; other projects' tokens get a 404
#   any:        nothing of a project's (a spool's offset is keyed by the client's spool)
VIEWER, EDITOR, VALIDATOR, ADMIN = "viewer", "editor", "validator", "admin"
POLICY: dict[str, tuple[str, str]] = {
    "create_experiment": (EDITOR, "project"),
    "get_experiment": (VIEWER, "experiment"),
    "get_or_create_experiment": (EDITOR, "project"),
    "list_experiments": (VIEWER, "project"),
    "set_experiment_lifecycle": (EDITOR, "experiment"),
    "create_run": (EDITOR, "experiment"),
    "get_run": (VIEWER, "run"),
    "end_run": (EDITOR, "run"),
    "reopen_run": (EDITOR, "run"),
    "set_run_lifecycle": (EDITOR, "run"),
    "child_runs": (VIEWER, "run"),
    "resolve_run_id": (VIEWER, "project"),
    "write_batch": (EDITOR, "run"),
    "spool_offset": (EDITOR, "any"),
    "metric_history": (VIEWER, "run"),
    "metric_keys": (VIEWER, "run"),
    "last_steps": (VIEWER, "run"),
    "add_artifact": (EDITOR, "run"),
    "list_artifacts": (VIEWER, "run"),
    "search_runs": (VIEWER, "project"),
    **{m: (VIEWER, "owned") for m in wire.DATASETS + wire.REGISTRY},
    **{m: (VIEWER, "owned") for m in DEPLOYMENT_METHODS},
    **{m: (VIEWER, "default") for m in wire.STEPS + wire.MONITORING
       + ("add_feedback", "feedback_for")},
    **{m: (EDITOR, "owned") for m in (
        "add_dataset_version", "set_dataset_version_lifecycle", "link_run_dataset",
        "create_model_version", "set_model_version_lifecycle", "set_model_tag",
        "set_model_description")},
    **{m: (EDITOR, "owned") for m in (
        "add_deployment_stats", "compact_deployment_stats", "add_inference_segment")},
    **{m: (EDITOR, "default") for m in (
        "record_step", "add_feedback", "add_monitor_record", "add_alert",
        "add_automation_action")},
    "record_model_event": (VALIDATOR, "owned"),
    # Moving an alias is a promotion (the UI's promote button is admin's too).
    "set_model_alias": (ADMIN, "owned"),
    "remove_model_alias": (ADMIN, "owned"),
    "create_deployment": (ADMIN, "owned"),
    "update_deployment": (ADMIN, "owned"),
    **{m: (ADMIN, "default") for m in wire.TOKENS},
}
# Calls that change nothing: audited as reads.
READS = frozenset(m for m, (role, _) in POLICY.items() if role == VIEWER)
# Where a run-scoped method finds its run.
RUN_ARGUMENT = "run_id"


def role_needed(path: str, method: str) -> tuple[str, bool] | None:
    """For a ``/api/v1`` request: the role it needs and whether it writes; None for
    any other path (the middleware's own rule applies)."""
    if path.startswith(wire.PREFIX):
        name = path[len(wire.PREFIX):]
        role, _ = POLICY.get(name, (VIEWER, "any"))  # an unknown method is a 404 anyway
        return role, name not in READS
    if path.startswith(BLOBS):
        if method in ("GET", "HEAD") or path in (BLOBS + "missing", BLOBS + "fetch"):
            return VIEWER, False
        return EDITOR, True
    return None


BLOBS = "/api/v1/blobs/"


class RunIndex:
    """Run id -> experiment id, remembered (runs never move): scoping a
    ``write_batch`` then costs no query after a run's first call."""

    def __init__(self, limit: int = 100_000) -> None:
        self._known: dict[str, int] = {}
        self._lock = threading.Lock()
        self._limit = limit

    def check(self, scope: Scope, run_id: str) -> None:
        experiment_id = self._known.get(run_id)
        if experiment_id is None:
            run = scope.ws.store.get_run(run_id)
            experiment_id = run.experiment_id
            with self._lock:
                if len(self._known) >= self._limit:
                    self._known.clear()
                self._known[run_id] = experiment_id
        if scope.index.of(experiment_id) != scope.project:
            raise NotFound(f"no run {run_id!r}", hint="list runs with `keel runs list`")


def router(ws: "Workspace", scoped: Scoped) -> APIRouter:
    """``/api/v1/store/*`` and ``/api/v1/blobs/*`` over ``ws``."""
    api = APIRouter(prefix="/api/v1")
    runs = RunIndex()
    for method in wire.METHODS:
        _add_method(api, ws, scoped, runs, method)
    _add_blobs(api, ws)
    return api


def _add_method(api: APIRouter, ws: "Workspace", scoped: Scoped, runs: RunIndex,
                method: str) -> None:
    signature = wire.signature(method)
    _, scoping = POLICY[method]
    model = arguments_model(method)
    required = any(default is inspect.Parameter.empty
                   for _, default in signature.parameters.values())

    def handler(request: Request, arguments: Any, scope: Scope) -> Response:
        given = arguments if arguments is not None else model()
        # Attributes, not model_dump(): that would turn entities back into dicts.
        kwargs = {name: getattr(given, name) for name in given.model_fields_set}
        result = _call(ws, scope, runs, method, scoping, kwargs)
        return Response(wire.dumps(result, signature.returns), media_type="application/json")

    handler.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                          annotation=Request),
        inspect.Parameter("arguments", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                          annotation=model if required else model | None,
                          default=Body(...) if required else Body(None)),
        inspect.Parameter("scope", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                          annotation=Scope, default=Depends(scoped)),
    ])
    role, _ = POLICY[method]
    api.add_api_route(f"/store/{method}", handler, methods=["POST"], name=method,
                      tags=["store"], summary=f"Store.{method} (needs {role})",
                      description=_first_line(method))


@functools.cache
def arguments_model(method: str) -> type[BaseModel]:
    """The request body of a store method: its parameters, typed, nothing else.
    Made once per process (building them is most of making the app)."""
    fields: dict[str, Any] = {
        name: (hint, ... if default is inspect.Parameter.empty else default)
        for name, (hint, default) in wire.signature(method).parameters.items()}
    return create_model(f"{method}_arguments", __config__=ConfigDict(extra="forbid"),
                        **fields)


def _first_line(method: str) -> str:
    from keel.store.protocol import Store

    doc = inspect.getdoc(getattr(Store, method)) or ""
    return doc.split("\n\n", 1)[0]


def _call(ws: "Workspace", scope: Scope, runs: RunIndex, method: str, scoping: str,
          kwargs: dict[str, Any]) -> Any:
    """Run one store method as the request's project may, on arguments checked as
    the domain layer checks them (store_checks.py)."""
    check_arguments(method, kwargs)
    try:
        return _scoped_call(ws.store, scope, runs, method, scoping, kwargs)
    except OverflowError as exc:  # SQLite holds 64-bit integers; pydantic any integer
        raise InvalidInput(f"a number in the request does not fit in 64 bits ({exc})") \
            from None
    except IntegrityError as exc:
        reason = str(exc.orig or exc).splitlines()[0]
        raise Conflict(f"the store refused the write: {reason}",
                       hint="it refers to something that does not exist, or clashes with "
                            "what is stored") from None


def _scoped_call(store: Any, scope: Scope, runs: RunIndex, method: str, scoping: str,
                 kwargs: dict[str, Any]) -> Any:
    if scoping == "default" and not scope.is_default:
        raise NotFound(f"project {scope.project!r} has no {method.split('_', 1)[-1]}",
                       hint="datasets, models, deployments and monitoring belong to the "
                            "default project")
    if scoping == "run" or (scoping == "default" and RUN_ARGUMENT in kwargs):
        runs.check(scope, kwargs[RUN_ARGUMENT])
    elif scoping == "experiment":
        key = "experiment_id" if "experiment_id" in kwargs else \
            "name_or_id" if "name_or_id" in kwargs else "name"
        scope.experiment(kwargs[key])
    elif scoping == "project":
        return _in_project(store, scope, runs, method, kwargs)
    elif scoping == "owned":
        return owned_call(store, scope, runs.check, method, kwargs)
    return getattr(store, method)(**kwargs)


def _in_project(store: Any, scope: Scope, runs: RunIndex, method: str,
                kwargs: dict[str, Any]) -> Any:
    if method == "create_experiment":
        return store.create_experiment(**{**kwargs, "project": scope.project})
    if method == "get_or_create_experiment":
        return _get_or_create(store, scope, kwargs["name"])
    if method == "list_experiments":
        return scope.experiments(kwargs.get("include_deleted", False))
    if method == "resolve_run_id":
        found = store.resolve_run_id(kwargs["prefix"])
        runs.check(scope, found)
        return found
    if method == "search_runs":
        ids = kwargs.get("experiment_ids")
        if ids is None:
            kwargs["experiment_ids"] = scope.experiment_ids()
        else:
            for experiment_id in ids:
                scope.experiment(experiment_id)
        return store.search_runs(**kwargs)
    raise AssertionError(f"no project rule for {method}")  # POLICY and this list disagree


def _get_or_create(store: Any, scope: Scope, name: str) -> Any:
    """The store's get-or-create (its rules: a deleted experiment refuses new runs)
    within the project; another project's name is taken ("already exists")."""
    try:
        scope.experiment(name)
    except NotFound:
        try:
            return store.create_experiment(name, project=scope.project)
        except AlreadyExists:
            try:
                scope.experiment(name)  # created here meanwhile: get it below
            except NotFound:
                raise AlreadyExists(f"experiment {name!r} already exists in another project",
                                    hint="choose another name") from None
    return store.get_or_create_experiment(name)


class Digests(BaseModel):
    """Digests a client is about to upload."""

    digests: list[str] = Field(max_length=MAX_DIGESTS)


def _add_blobs(api: APIRouter, ws: "Workspace") -> None:
    @api.post("/blobs/missing", tags=["blobs"])
    def missing(body: Digests) -> dict[str, list[str]]:
        """Which of ``digests`` the server lacks (send those, skip the rest)."""
        return {"missing": [d for d in body.digests if not ws.blobs.exists(_digest(d))]}

    @api.post("/blobs/pack", tags=["blobs"])
    async def upload_many(request: Request) -> dict[str, int]:
        """Store many small blobs sent as frames (``blobs/frames.py``): each is checked
        against its digest, and nothing is stored unless all of them pass."""
        received = [item async for item in frames.decode_stream(request.stream(),
                                                                 MAX_BATCH_BYTES)]
        stored = await run_in_threadpool(_store_many, ws, received)
        return {"received": len(received), "stored": stored}

    @api.post("/blobs/fetch", tags=["blobs"])
    def download_many(body: Digests) -> Response:
        """Many blobs as frames, each checked against its digest before it leaves."""
        wanted = [_digest(d) for d in body.digests]
        absent = [d for d in wanted if not ws.blobs.exists(d)]
        if absent:
            raise NotFound(f"{len(absent)} of the blobs asked for are not on the server, "
                           f"such as {absent[0]}", hint="push them from a workspace that "
                                                        "has them")

        found, size = [], 0
        for digest in wanted:  # all read and checked before the answer starts
            data = _verified_bytes(ws, digest)
            size += len(data)
            if size > MAX_BATCH_BYTES:
                raise frames.TooLarge(MAX_BATCH_BYTES)
            found.append((digest, data))
        return Response(b"".join(frames.encode(found)), media_type="application/octet-stream")

    @api.get("/blobs", tags=["blobs"])
    def listing() -> dict[str, list[str]]:
        """Every digest stored (what ``keel data pull`` compares with)."""
        return {"digests": sorted(ws.blobs.digests())}

    @api.head("/blobs/{digest}", tags=["blobs"])
    def exists(digest: str) -> Response:
        if not ws.blobs.exists(_digest(digest)):
            raise NotFound(f"no blob {digest}")
        return Response(status_code=200)

    @api.get("/blobs/{digest}", tags=["blobs"])
    def download(digest: str) -> Response:
        """The blob's bytes, verified against ``digest`` before they leave."""
        data = _verified_bytes(ws, _digest(digest))

        def body() -> Iterator[bytes]:
            view = memoryview(data)
            for start in range(0, len(view), CHUNK):
                yield bytes(view[start:start + CHUNK])

        return StreamingResponse(body(), media_type="application/octet-stream",
                                 headers={"content-length": str(len(data))})

    @api.put("/blobs/{digest}", tags=["blobs"])
    async def upload(digest: str, request: Request) -> dict[str, Any]:
        """Store the request's bytes under ``digest``, if they have it."""
        from blake3 import blake3

        digest = _digest(digest)
        if await run_in_threadpool(ws.blobs.exists, digest):
            async for _ in request.stream():  # drained: the client sent it anyway
                pass
            return {"digest": digest, "stored": False}
        hasher, size = blake3(), 0
        fd, temp = tempfile.mkstemp(prefix="keel-blob-")
        try:
            with os.fdopen(fd, "wb") as spool:
                async for chunk in request.stream():  # streamed: bounded memory
                    size += len(chunk)
                    if size > MAX_UPLOAD_BYTES:
                        raise _TooLarge()
                    hasher.update(chunk)
                    spool.write(chunk)
            if hasher.hexdigest() != digest:
                raise InvalidInput(f"the uploaded bytes do not have the digest {digest}",
                                   hint="the upload was damaged or the digest is wrong: "
                                        "send it again")
            await run_in_threadpool(_store_file, ws, temp, digest)
        finally:
            os.unlink(temp)
        return {"digest": digest, "stored": True, "size": size}


def _verified_bytes(ws: "Workspace", digest: str) -> bytes:
    try:
        return ws.blobs.get_bytes(digest)
    except NotFound:  # the store's words name its folder: not for clients
        raise NotFound(f"blob {digest} is not on the server",
                       hint="push it from a workspace that has it") from None
    except CorruptData:
        raise CorruptData(f"blob {digest} is corrupted on the server (its bytes no "
                          "longer match their digest)",
                          hint="the server's administrator can restore it from a "
                               "remote or a backup") from None


def _store_many(ws: "Workspace", items: list[tuple[str, bytes]]) -> int:
    """Store checked blobs: into one pack on a local store (one fsync for all),
    one by one elsewhere; returns how many were new."""
    stored = 0
    with ws.writing():
        packs = ws.blobs.packs
        if packs is None:
            for digest, data in items:
                if not ws.blobs.exists(digest):
                    ws.blobs.put_bytes(data, digest)
                    stored += 1
            return stored
        with ws.blobs.pack_writer() as pack:
            for digest, data in items:
                if ws.blobs.exists(digest):
                    continue
                if len(data) < PACKED_BELOW:  # as a local `data add` packs them
                    pack.add(data, digest)
                else:
                    ws.blobs.put_bytes(data, digest)
                stored += 1
    return stored


def _store_file(ws: "Workspace", path: str, digest: str) -> None:
    with ws.writing():
        ws.blobs.put_file(path, digest)


def _digest(text: str) -> str:
    if not is_digest(text):
        raise InvalidInput(f"{text[:80]!r} is not a blob digest",
                           hint="a digest is 64 lowercase hex characters (BLAKE3)")
    return text


class _TooLarge(InvalidInput):
    status = 413

    def __init__(self) -> None:
        super().__init__(f"the upload is larger than {MAX_UPLOAD_BYTES} bytes",
                         hint="store large data in the object store directly (KEEL_BLOBS)")

