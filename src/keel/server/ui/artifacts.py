"""A run's artifacts in the browser: previews for the run page, and the bytes of
one artifact with a content type a browser may show.

Artifacts are written by anyone holding an editor token, so what they hold
is untrusted: text is previewed through autoescaping, images are shown with
``<img>`` (where an SVG's scripts never run), and the bytes themselves are
served under a sandboxing Content-Security-Policy, so an SVG or HTML file
opened directly cannot run script as this server's pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import quote

from fastapi.responses import Response

from keel.errors import NotFound
from keel.tracking.keys import check_artifact_path

if TYPE_CHECKING:
    from keel.entities import Artifact
    from keel.workspace import Workspace

TEXT = {".txt": "text/plain", ".log": "text/plain", ".md": "text/plain",
        ".csv": "text/plain", ".yaml": "text/plain", ".yml": "text/plain",
        ".diff": "text/plain", ".json": "application/json"}
IMAGES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
          ".svg": "image/svg+xml", ".gif": "image/gif"}
PREVIEW_BYTES = 20_000
# The blob store verifies a blob by reading all of it, so a preview of a large
# file costs the whole file: beyond 8 MB the page links to the file instead.
MAX_PREVIEW_BLOB = 8_000_000
# Previews per run page: a run that logged thousands of files keeps a readable page.
MAX_PREVIEWS = 20
SANDBOX = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"


@dataclass(frozen=True)
class ArtifactView:
    """One artifact as the run page shows it."""

    path: str
    size: int
    url: str
    kind: str  # text | image | other
    preview: str = ""
    truncated: bool = False
    note: str = ""


def artifact_url(run_id: str, path: str) -> str:
    """Where the UI serves an artifact's bytes: ``/runs/<id>/artifacts/<path>``."""
    return f"/runs/{quote(run_id)}/artifacts/{quote(path)}"


def views(ws: Workspace, run_id: str, artifacts: list[Artifact]) -> list[ArtifactView]:
    """Every artifact of a run, the first ``MAX_PREVIEWS`` previewable ones with
    their preview (text: its first 20 KB; images: shown from their URL)."""
    shown = 0
    out = []
    for artifact in sorted(artifacts, key=lambda a: a.path):
        suffix = PurePosixPath(artifact.path).suffix.lower()
        kind = "text" if suffix in TEXT else "image" if suffix in IMAGES else "other"
        url = artifact_url(run_id, artifact.path)
        if kind == "other":
            out.append(ArtifactView(artifact.path, artifact.size, url, kind))
            continue
        if shown >= MAX_PREVIEWS:
            out.append(ArtifactView(artifact.path, artifact.size, url, "other",
                                    note=f"previews shown for the first {MAX_PREVIEWS} files"))
            continue
        if artifact.size > MAX_PREVIEW_BLOB:
            out.append(ArtifactView(artifact.path, artifact.size, url, "other",
                                    note="too large to preview"))
            continue
        shown += 1
        if kind == "image":
            out.append(ArtifactView(artifact.path, artifact.size, url, kind))
            continue
        data = ws.blobs.get_bytes(artifact.digest)
        out.append(ArtifactView(artifact.path, artifact.size, url, kind,
                                data[:PREVIEW_BYTES].decode("utf-8", errors="replace"),
                                len(data) > PREVIEW_BYTES))
    return out


def serve(ws: Workspace, run_id: str, path: str) -> Response:
    """The bytes of artifact ``path`` of run ``run_id``; :class:`InvalidInput` for
    a path that would leave the run's root, :class:`NotFound` for a missing one."""
    relative = check_artifact_path(path)
    run = ws.store.get_run(ws.store.resolve_run_id(run_id))
    found = next((a for a in ws.store.list_artifacts(run.id) if a.path == relative), None)
    if found is None:
        raise NotFound(f"run {run.id} has no artifact {relative!r}",
                       hint="the run page lists its artifacts")
    suffix = PurePosixPath(relative).suffix.lower()
    media_type = IMAGES.get(suffix) or TEXT.get(suffix)
    headers = {"Content-Security-Policy": SANDBOX, "X-Content-Type-Options": "nosniff",
               "Cache-Control": "private, max-age=300"}
    if media_type is None:
        media_type = "application/octet-stream"
        name = PurePosixPath(relative).name
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name)}"
    elif media_type.startswith("text/") or media_type == "application/json":
        media_type += "; charset=utf-8"
    return Response(ws.blobs.get_bytes(found.digest), media_type=media_type, headers=headers)
