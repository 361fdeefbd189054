"""The HTTP face of a :class:`Runtime`: an ASGI app built with FastAPI.

``POST /predict`` (and ``/invocations``, MLflow's path) is the hot path: the
body is read as bytes, parsed with orjson, checked against the signature by
the model, and answered with orjson; no validation models in between. Errors
are JSON ``{"error": ..., "hint": ...}`` with 400 (unreadable), 413 (too
large), 415 (content type), 422 (rows that do not fit the model) or 500 (the
model failed), and every answer carries ``X-Request-Id``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from keel.errors import InvalidInput
from keel.serving.payload import BadRequest, answer
from keel.serving.runtime import ModelFailed, Runtime

JSON = "application/json"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
PREDICT_PATHS = ("/predict", "/invocations")
TOO_LARGE_HINT = "send fewer rows per request, or start the server with a larger --max-body-mb"

PREDICT_DOC: dict[str, Any] = {
    "requestBody": {"required": True, "content": {
        JSON: {"schema": {"oneOf": [
            {"type": "array", "items": {"type": "object"}, "title": "records"},
            {"type": "object", "title": "columnar",
             "properties": {"columns": {"type": "array", "items": {"type": "string"}},
                            "data": {"type": "array", "items": {"type": "array"}}},
             "required": ["columns", "data"]},
            {"type": "object", "title": "MLflow", "properties": {
                "dataframe_split": {"type": "object"},
                "dataframe_records": {"type": "array", "items": {"type": "object"}},
                "instances": {"type": "array"}, "inputs": {}}},
        ]}, "example": {"columns": ["age", "plan"], "data": [[31, "pro"]]}},
        "text/csv": {"schema": {"type": "string"}}}},
    "responses": {"200": {"description": "predictions", "content": {JSON: {"example": {
        "predictions": [1], "model_version": "churn/2", "request_id": "5f0c..."}}}},
        "400": {"description": "unreadable body"}, "413": {"description": "body too large"},
        "415": {"description": "unsupported content type"},
        "422": {"description": "rows that do not fit the model's signature"},
        "500": {"description": "the model failed"}},
}


def _json(body: dict[str, Any], status: int = 200, request_id: str | None = None
          ) -> Response:
    headers = {"X-Request-Id": request_id} if request_id else None
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), status,
                    headers=headers, media_type=JSON)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) past ``limit`` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, f"request body is {int(declared):,} bytes; the limit is "
                              f"{limit:,}", hint="send fewer rows per request, or start the "
                                                 "server with a larger --max-body-mb")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(413, f"request body exceeds the limit of {limit:,} bytes",
                             hint="send fewer rows per request, or start the server with a "
                                  "larger --max-body-mb")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(runtime: Runtime, close_on_shutdown: bool = True) -> HotPath:
    """The ASGI app serving ``runtime``: :class:`HotPath` answering predictions in
    front of the FastAPI app (everything else, and the OpenAPI docs). It closes
    the runtime (flushing the inference log) on shutdown."""
    return HotPath(build_fastapi(runtime, close_on_shutdown), runtime)


def build_fastapi(runtime: Runtime, close_on_shutdown: bool = True) -> FastAPI:
    """The FastAPI app: /predict (documented), /feedback, /health, /ready, /metrics."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if close_on_shutdown:
            runtime.close()

    app = FastAPI(title=f"keel serving: {runtime.deployment}", version="1",
                  description="Predictions from the model versions of a keel deployment, "
                              "with canary, A/B and shadow rollout.", lifespan=lifespan)
    limit = runtime.options.max_body_bytes
    metrics = runtime.metrics
    deployment = runtime.deployment

    async def predict(request: Request) -> Response:
        # Reached only when the app is used without HotPath (see create_app).
        try:
            body = await read_body(request, limit)
        except BadRequest as exc:
            return _json(exc.to_dict(), exc.status)
        status, content, request_id = await respond(runtime, request.headers.get, body)
        return Response(content, status, headers={"X-Request-Id": request_id} if request_id
                        else None, media_type=JSON)

    for path in PREDICT_PATHS:
        app.add_api_route(path, predict, methods=["POST"], openapi_extra=PREDICT_DOC,
                          summary="Predict rows" if path == "/predict"
                          else "Predict rows (MLflow's path)",
                          include_in_schema=True)

    @app.post("/feedback", summary="Attach ground-truth labels to earlier predictions",
              openapi_extra={"requestBody": {"required": True, "content": {JSON: {"example": {
                  "request_id": "5f0c...", "label": 1}}}}})
    async def feedback(request: Request) -> Response:
        try:
            body = await read_body(request, limit)
            items = parse_feedback(body)
        except BadRequest as exc:
            return _json(exc.to_dict(), exc.status)
        stored = runtime.ws.store.add_feedback([(r, deployment, label) for r, label in items])
        return _json({"stored": stored})

    @app.get("/health", summary="The process is up (and what it serves)")
    async def health() -> Response:
        return _json({"status": "ok", **runtime.describe()})

    @app.get("/ready", summary="Every routed model version is loaded")
    async def ready() -> Response:
        serving = runtime.serving
        missing = sorted(serving.split.versions - serving.models.keys())
        if missing:
            return _json({"ready": False, "missing": missing}, 503)
        return _json({"ready": True, "revision": serving.revision,
                      "versions": sorted(serving.models)})

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    return app


async def respond(runtime: Runtime, header: Any, body: bytes
                  ) -> tuple[int, bytes, str | None]:
    """``(status, JSON body, request id)`` for a prediction request; ``header(name)``
    reads a request header (lower-case name)."""
    metrics, deployment = runtime.metrics, runtime.deployment
    given = header("x-request-id")
    request_id = given if given and _REQUEST_ID.fullmatch(given) else None
    try:
        sticky_header = runtime.serving.spec.sticky_header
        sticky = header(sticky_header.lower()) if sticky_header else None
        result = await runtime.handle_async(body, header("content-type"), sticky,
                                            request_id)
    except BadRequest as exc:
        metrics.requests.labels(deployment, "-", "live", str(exc.status)).inc()
        return exc.status, _dumps(exc.to_dict()), request_id
    except InvalidInput as exc:
        metrics.requests.labels(deployment, "-", "live", "422").inc()
        return 422, _dumps({"error": exc.message, "hint": exc.hint}), request_id
    except ModelFailed as exc:
        metrics.requests.labels(deployment, exc.version, "live", "500").inc()
        return 500, _dumps({"error": str(exc), "model_version": exc.version}), request_id
    metrics.requests.labels(deployment, result.version, "live", "200").inc()
    return 200, answer(result.predictions, result.version, result.request_id), \
        result.request_id


def _dumps(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


class HotPath:
    """Answers ``POST /predict`` and ``/invocations`` in plain ASGI, and hands
    every other request (and the lifespan) to the FastAPI app.

    FastAPI's routing, request and response objects cost ~75 us a request on
    this machine (a trivial endpoint: 9.2k requests/s under FastAPI, 31k in
    plain ASGI); for one-row predictions that is a fifth of the whole budget.
    """

    def __init__(self, app: FastAPI, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        self.limit = runtime.options.max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or \
                scope["path"] not in PREDICT_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            body = await self._body(headers, receive)
        except BadRequest as exc:
            await _send(send, exc.status, _dumps(exc.to_dict()), None)
            return
        status, content, request_id = await respond(self.runtime, headers.get, body)
        await _send(send, status, content, request_id)

    async def _body(self, headers: dict[str, str], receive: Any) -> bytes:
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            raise BadRequest(413, f"request body is {int(declared):,} bytes; the limit is "
                                  f"{self.limit:,}", hint=TOO_LARGE_HINT)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BadRequest(400, "the client went away before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                raise BadRequest(413, f"request body exceeds the limit of {self.limit:,} "
                                      "bytes", hint=TOO_LARGE_HINT)
            chunks.append(chunk)
            if not message.get("more_body"):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _send(send: Any, status: int, content: bytes, request_id: str | None) -> None:
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(content)).encode())]
    if request_id:
        headers.append((b"x-request-id", request_id.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def parse_feedback(body: bytes) -> list[tuple[str, Any]]:
    """``{"request_id", "label"}``, a list of them, or ``{"items": [...]}``."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(400, f"the feedback body is not valid JSON: {exc}") from None
    items = payload.get("items") if isinstance(payload, dict) and "items" in payload \
        else payload
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not items:
        raise BadRequest(422, "feedback must be {\"request_id\": ..., \"label\": ...} or a "
                              "non-empty list of them")
    found = []
    for number, item in enumerate(items):
        if not isinstance(item, dict) or "request_id" not in item or "label" not in item:
            raise BadRequest(422, f"feedback item {number} needs 'request_id' and 'label'",
                             hint='send {"request_id": "<from the prediction>", "label": 1}')
        request_id = item["request_id"]
        if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
            raise BadRequest(422, f"feedback item {number} has a bad request_id",
                             hint="use the request_id a prediction answered with")
        found.append((request_id, item["label"]))
    return found
