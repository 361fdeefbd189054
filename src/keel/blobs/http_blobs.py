"""The blob store of a keel server, for workspaces whose store is one
(``KEEL_STORE=http://host:5050``): blobs go up and come down through the
server's ``/api/v1/blobs``, streamed and checked against their digest at both
ends (the server refuses bytes that do not have the digest they were sent
under; this side re-hashes what it receives)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from keel.api_client import HttpConnection, raise_for
from keel.blobs.digest import hash_bytes, hash_file, is_digest
from keel.blobs.store import BlobStore
from keel.errors import CorruptData, InvalidInput, NotFound

PATH = "/api/v1/blobs"


class HttpBlobStore(BlobStore):
    """A :class:`BlobStore` whose bytes live behind a keel server."""

    def __init__(self, url: str, token: str | None = None) -> None:
        # Not BlobStore.__init__: no folder and no fsspec filesystem behind it.
        self.http = HttpConnection(url, token)
        self.url = self.root = self.http.url
        self._fs = None
        self.local = False
        self.packs = None
        self._made_dirs: set[str] = set()

    def __repr__(self) -> str:
        return f"<HttpBlobStore {self.url}>"

    def close(self) -> None:
        self.http.close()

    @property
    def fs(self) -> Any:
        raise InvalidInput(f"the blobs of {self.url} are reached through the server only",
                           hint="set KEEL_BLOBS to the object store itself to use it directly")

    def path_of(self, digest: str) -> str:
        if not is_digest(digest):
            raise InvalidInput(f"{digest!r} is not a BLAKE3 hex digest")
        return f"{self.url}{PATH}/{digest}"

    def exists(self, digest: str) -> bool:
        self.path_of(digest)
        status, body = self.http.request("HEAD", f"{PATH}/{digest}")
        if status == 404:
            return False
        raise_for(status, body)
        return True

    def is_loose(self, digest: str) -> bool:
        return False

    def missing(self, digests: list[str]) -> list[str]:
        """Which of ``digests`` the server lacks, in one request."""
        status, body = self.http.request("POST", f"{PATH}/missing",
                                         json.dumps({"digests": digests}).encode(),
                                         {"Content-Type": "application/json"})
        raise_for(status, body)
        return list(json.loads(body)["missing"])

    def digests(self) -> set[str]:
        status, body = self.http.request("GET", PATH)
        raise_for(status, body)
        return set(json.loads(body)["digests"])

    def put_bytes(self, data: bytes, digest: str | None = None) -> str:
        digest = digest or hash_bytes(data)
        self._upload(digest, data, len(data))
        return digest

    def put_file(self, path: str | os.PathLike[str], digest: str | None = None) -> str:
        digest = digest or hash_file(path)
        if self.exists(digest):  # a HEAD, not the whole file, when it is there already
            return digest
        with open(path, "rb") as source:
            # The server hashes what arrives and refuses it unless it is ``digest``:
            # a file changed since it was hashed is refused, not filed wrongly.
            self._upload(digest, source, os.fstat(source.fileno()).st_size)
        return digest

    def put_verified_file(self, path: str | os.PathLike[str], digest: str) -> None:
        self.put_file(path, digest)

    def _upload(self, digest: str, body: Any, size: int) -> None:
        status, answer = self.http.request(
            "PUT", f"{PATH}/{self.path_of(digest).rsplit('/', 1)[1]}", body,
            {"Content-Type": "application/octet-stream", "Content-Length": str(size)})
        raise_for(status, answer)

    def get_bytes(self, digest: str) -> bytes:
        self.path_of(digest)
        status, body = self.http.request("GET", f"{PATH}/{digest}")
        if status == 404:
            raise NotFound(f"blob {digest} is missing from {self.url}",
                           hint="push it from the workspace that has it")
        raise_for(status, body)
        if hash_bytes(body) != digest:
            raise CorruptData(f"blob {digest} from {self.url} arrived damaged (its bytes do "
                              "not match their digest)", hint="try again")
        return body

    def fetch(self, digest: str, dest: str | os.PathLike[str]) -> None:
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        temp = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex}")
        try:
            temp.write_bytes(self.get_bytes(digest))
            os.replace(temp, dest)
        finally:
            temp.unlink(missing_ok=True)
