"""Data remotes: where ``keel data push`` sends versions and ``pull`` fetches them.

Layout under the remote URL::

    blobs/ab/cdef...            the same content-addressed layout as .keel/blobs
    datasets/NAME/N.json        one record per version, written after its blobs

Because records are written only once every blob they need is there, and
blobs already present are skipped, an interrupted push is completed by the
next one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from keel.blobs import BlobStore
from keel.config import read_toml, resolve
from keel.errors import InvalidInput, RemoteUnreachable
from keel.workspace import Workspace


@dataclass
class Remote:
    """An opened remote: its blob store and its dataset records."""

    url: str
    blobs: BlobStore

    @property
    def fs(self) -> Any:
        return self.blobs.fs

    def records_root(self) -> str:
        return self.blobs.root.rsplit("/", 1)[0] + "/datasets"

    def record_path(self, name: str, version: int) -> str:
        return f"{self.records_root()}/{name}/{version}.json"

    def write_record(self, name: str, version: int, record: dict[str, Any]) -> None:
        path = self.record_path(name, version)
        if self.blobs.local:
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        self.fs.pipe_file(path, json.dumps(record, sort_keys=True).encode())

    def read_records(self) -> list[tuple[str, bytes]]:
        """Every record file's bytes, by its path under ``datasets/`` (``NAME/N.json``),
        undecoded: ``keel.data.record`` checks them."""
        root = self.records_root().rstrip("/")
        try:
            paths = [p for p in self.fs.find(root) if p.endswith(".json")]
        except FileNotFoundError:
            return []
        return [(p[len(root) + 1:] if p.startswith(root + "/") else p, self.fs.cat_file(p))
                for p in sorted(paths)]


def open_remote(ws: Workspace, url: str | None = None) -> Remote:
    """The remote given, or the one configured (``KEEL_REMOTE`` / keel.toml ``[remote]``).

    Options in keel.toml's ``[remote]`` table other than ``url`` (such as
    ``endpoint_url`` for an S3-compatible server) are passed to fsspec.
    """
    chosen = resolve("remote", ws.root, url).value
    if not chosen:
        raise InvalidInput("no data remote given",
                           hint="pass --remote s3://bucket/prefix (or a folder), or set it "
                                "once in keel.toml:  [remote]  url = \"s3://bucket/prefix\"")
    table = read_toml(ws.root).get("remote")
    options = {k: v for k, v in table.items() if k != "url"} if isinstance(table, dict) else {}
    chosen = chosen.rstrip("/")
    try:
        return Remote(chosen, BlobStore(chosen + "/blobs", **options))
    except (ImportError, ValueError) as exc:
        raise InvalidInput(f"cannot use remote {chosen!r}: {exc}",
                           hint="for s3:// install the extra: pip install 'keel[s3]'") from exc


def unreachable(remote_url: str, exc: BaseException) -> RemoteUnreachable:
    """Turn a storage library's error into a message a user can act on."""
    reason = f"{type(exc).__name__}: {exc}".strip()
    return RemoteUnreachable(
        f"cannot reach remote {remote_url} ({reason[:300]}); nothing local was changed",
        hint="check the URL, the network, and credentials (AWS_ACCESS_KEY_ID / "
             "AWS_SECRET_ACCESS_KEY, or endpoint_url in keel.toml's [remote] table)")
