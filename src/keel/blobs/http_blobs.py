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
from keel.blobs import frames
from keel.blobs.digest import hash_bytes, hash_file, is_digest
from keel.blobs.store import BlobStore
from keel.errors import CorruptData, InvalidInput, NotFound

PATH = "/api/v1/blobs"


class HttpBlobStore(BlobStore):
    """A :class:`BlobStore` whose bytes live behind a keel server."""

    batches = True  # put_many / get_many move many small blobs a request

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

    def _missing(self, digests: list[str]) -> list[str]:
        status, body = self.http.request("POST", f"{PATH}/missing",
                                         json.dumps({"digests": digests}).encode(),
                                         {"Content-Type": "application/json"})
        raise_for(status, body)
        return list(json.loads(body)["missing"])

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        """Store many small blobs (already hashed): those the server lacks travel
        as frames, ~8 MiB a request."""
        have = {d: data for d, data in items}
        todo = [(d, have[d]) for d in self.missing(list(have))]
        batch: list[tuple[str, bytes]] = []
        size = 0
        for digest, data in todo:
            batch.append((digest, data))
            size += len(data) + frames.HEADER.size
            if size >= frames.BATCH_BYTES:
                self._send_frames(batch)
                batch, size = [], 0
        if batch:
            self._send_frames(batch)

    def _send_frames(self, batch: list[tuple[str, bytes]]) -> None:
        status, answer = self.http.request("POST", f"{PATH}/pack",
                                           b"".join(frames.encode(batch)),
                                           {"Content-Type": "application/octet-stream"})
        raise_for(status, answer)

    def get_many(self, digests: list[str], count: int = 2000) -> dict[str, bytes]:
        """Many blobs' bytes by digest, ``count`` a request, each checked."""
        out: dict[str, bytes] = {}
        for start in range(0, len(digests), count):
            part = digests[start:start + count]
            status, body = self.http.request("POST", f"{PATH}/fetch",
                                             json.dumps({"digests": part}).encode(),
                                             {"Content-Type": "application/json"})
            raise_for(status, body)
            try:
                out.update(frames.decode(body))
            except InvalidInput as exc:
                raise CorruptData(f"blobs from {self.url} arrived damaged ({exc.message})",
                                  hint="try again") from exc
            if not set(part) <= out.keys():
                raise CorruptData(f"{self.url} did not send every blob asked for")
        return out

    def missing(self, digests: list[str]) -> list[str]:
        """Which of ``digests`` the server lacks (50,000 a request)."""
        out: list[str] = []
        for start in range(0, len(digests), 50_000):
            out += self._missing(digests[start:start + 50_000])
        return out

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
