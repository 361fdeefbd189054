"""A :class:`~keel.store.protocol.Store` that is a keel server: ``KEEL_STORE=http://host:5050``.

Every served method is one ``POST /api/v1/store/<method>`` (``store/wire.py``);
the server answers with the value or the error the store raised there, which
is raised here as the same class with the same message and hint. So the
Python API and the CLI work unchanged against a team server, and the test
suites run against one.

Requests go through :class:`keel.api_client.HttpConnection` (the standard
library's ``http.client``, kept alive, one connection per thread).
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from keel.api_client import HttpConnection, raise_for
from keel.errors import InvalidInput, KeelError
from keel.store import wire


def _remote(method: str) -> Any:
    from keel.store.protocol import Store

    protocol_signature = inspect.signature(getattr(Store, method))

    def call(self: HttpStore, *args: Any, **kwargs: Any) -> Any:
        bound = protocol_signature.bind(self, *args, **kwargs)
        arguments = {k: v for k, v in bound.arguments.items() if k != "self"}
        status, body = self.http.request(
            "POST", wire.PREFIX + method, wire.encode_arguments(method, arguments),
            {"Content-Type": "application/json"})
        raise_for(status, body)
        return wire.loads(body, wire.signature(method).returns)

    call.__name__ = method
    call.__doc__ = inspect.getdoc(getattr(Store, method))
    return call


class HttpStore:
    """The store of a keel server; see the module docstring. Methods the server
    does not serve (garbage collection's, the token lookup) say where to go."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.http = HttpConnection(url, token)
        self._store_id: str | None = None

    def __repr__(self) -> str:
        return f"<HttpStore {self.url}>"

    @property
    def url(self) -> str:
        return self.http.url

    @property
    def store_id(self) -> str:
        """The server's store id (from ``/health``)."""
        if self._store_id is None:
            status, body = self.http.request("GET", "/health")
            raise_for(status, body)
            self._store_id = str(json.loads(body).get("store", ""))
        return self._store_id

    def close(self) -> None:
        self.http.close()

    def _elsewhere(self, what: str, hint: str) -> KeelError:
        return InvalidInput(f"{what} is not done through a keel server ({self.url})",
                            hint=hint)

    # -- not on the wire ------------------------------------------------------------------

    def _gc_only(self, *_: Any, **__: Any) -> Any:
        raise self._elsewhere("garbage collection",
                              "run `keel gc` on the server's machine, against its store")

    deleted_runs = registered_runs = purge_runs = deleted_model_versions = _gc_only
    purge_model_version = deleted_dataset_versions = purge_dataset_versions = _gc_only
    referenced_digests = _gc_only

    def token_by_hash(self, secret_hash: str) -> Any:
        raise self._elsewhere("checking a token", "the server checks tokens itself")

    def audit_write(self, *_: Any, **__: Any) -> None:
        raise self._elsewhere("writing the audit", "the server audits every write itself")

    def _server_only(self, *_: Any, **__: Any) -> Any:
        raise self._elsewhere("deciding which project owns a name",
                              "the server does it from the token's project")

    name_project = claim_name = claimed_names = version_dataset = _server_only

    def _mlflow_only(self, *_: Any, **__: Any) -> Any:
        raise self._elsewhere("MLflow's logged and registered models",
                              "MLflow clients reach them at /api/2.0/mlflow/")

    create_logged_model = get_logged_model = update_logged_model = _mlflow_only
    delete_logged_model_tag = search_logged_models = add_logged_model_file = _mlflow_only
    logged_model_files = _mlflow_only
    create_mlflow_model = get_mlflow_model = list_mlflow_models = _mlflow_only
    create_mlflow_model_version = get_mlflow_model_version = _mlflow_only
    mlflow_model_versions = set_mlflow_alias = delete_mlflow_alias = _mlflow_only


for _method in wire.METHODS:
    setattr(HttpStore, _method, _remote(_method))
