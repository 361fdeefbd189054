"""``keel.load_model``: any model reference to a verified, safely loaded package."""

from __future__ import annotations

from keel.models.registry import resolve
from keel.models.uri import parse_model_ref
from keel.packaging.load import load_package, materialise_package
from keel.packaging.model import PackagedModel
from keel.workspace import Workspace, resolve_workspace


def load_model(uri: str, trust: bool = False, trusted_types: tuple[str, ...] = (),
               ws: Workspace | None = None) -> PackagedModel:
    """Load ``models:/churn@champion``, ``models:/churn/3``, ``runs:/<id>/model`` or a
    package folder. Files are checked against their digests; pickled code runs
    only with ``trust=True``.

    >>> model = keel.load_model("models:/churn@champion")
    >>> model.predict(frame)
    """
    ref = parse_model_ref(uri)
    if ref.kind == "path":
        return load_package(ref.path, trust=trust, trusted_types=trusted_types, uri=uri)
    ws = resolve_workspace(ws)
    resolved = resolve(ref, ws)
    folder = materialise_package(ws.blobs, resolved.package_digest,
                                 ws.folder / "cache" / "models")
    return load_package(folder, trust=trust, trusted_types=trusted_types,
                        uri=str(ref) if not resolved.version else
                        f"{ref} ({resolved.version.ref})",
                        package_digest=resolved.package_digest)
