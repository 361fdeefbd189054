"""A connection to a keel server's ``/api/v1``: the store (``store/http_store.py``)
and the blob store (``blobs/http_blobs.py``) of a ``KEEL_STORE=http://...``
workspace both speak through it.

The standard library's ``http.client``, kept alive, one connection per thread
(it is not thread-safe): no HTTP package to import for a short command. An
error the server answers is raised here as the class the server raised, with
its message and hint.
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
from typing import Any

from keel.errors import (
    AlreadyExists,
    Conflict,
    CorruptData,
    Forbidden,
    IncompatibleVersion,
    InvalidInput,
    KeelError,
    NotFound,
    StoreUnavailable,
)

# Error classes by name, so the client raises what the store raised.
ERRORS: dict[str, type[KeelError]] = {cls.__name__: cls for cls in (
    NotFound, AlreadyExists, InvalidInput, Conflict, Forbidden, CorruptData,
    IncompatibleVersion, StoreUnavailable)}


TIMEOUT_S = 300.0


class HttpConnection:
    """Keep-alive requests to one server with one token, a connection per thread."""

    def __init__(self, url: str, token: str | None) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise InvalidInput(f"{url!r} is not a keel server URL",
                               hint="use http://host:port or https://host:port")
        self.url = url.rstrip("/")
        self._https = parsed.scheme == "https"
        self._host = parsed.hostname
        self._port = parsed.port
        self._base = parsed.path.rstrip("/")
        self._token = token
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = kind(self._host, self._port, timeout=TIMEOUT_S)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """Send one request; (status, body). A kept-alive connection the server
        closed meanwhile is reopened once; a server that cannot be reached is
        :class:`StoreUnavailable`."""
        sent = {**(headers or {})}
        if self._token:
            sent["Authorization"] = f"Bearer {self._token}"
        for attempt in (1, 2):
            conn = self._connection()
            fresh = conn.sock is None
            try:
                conn.request(method, self._base + path, body=body, headers=sent)
                response = conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError) as exc:
                conn.close()
                # Only a connection that had sat idle may have been dropped: retry
                # once then, never a request a fresh connection already sent.
                if fresh or attempt == 2 or hasattr(body, "read"):
                    raise StoreUnavailable(f"the keel server at {self.url} closed the "
                                           f"connection: {exc}",
                                           hint="check that the server is running") from exc
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise StoreUnavailable(f"cannot reach the keel server at {self.url}: {exc}",
                                       hint="start it with `keel server`, or check "
                                            "KEEL_STORE") from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


def raise_for(status: int, body: bytes) -> None:
    """Raise the error an answer carries, if it carries one."""
    if status < 400:
        return
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = {}
    if not isinstance(parsed, dict):
        parsed = {}
    if status == 401:
        raise Forbidden(str(parsed.get("message", "the server refused the token")),
                        hint="set KEEL_TOKEN to a token from `keel token create`")
    raise error_from(parsed, status)



def error_from(body: dict[str, Any], status: int) -> KeelError:
    """The error a ``/api/v1`` answer carries, as the class the server raised."""
    cls = ERRORS.get(str(body.get("error_type", "")))
    message = str(body.get("detail") or body.get("message") or f"HTTP {status}")
    hint = body.get("hint")
    if cls is None:
        cls = {401: Forbidden, 403: Forbidden, 404: NotFound, 409: Conflict,
               413: InvalidInput, 422: InvalidInput}.get(status, KeelError)
        if status >= 500:
            cls = StoreUnavailable
    return cls(message, hint=str(hint) if hint else None)
