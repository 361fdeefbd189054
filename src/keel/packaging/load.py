"""Reading a model package back: digests checked first, then the flavor loads it."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from keel.blobs import BlobStore
from keel.blobs.digest import hash_file
from keel.errors import CorruptData, InvalidInput, NotFound
from keel.packaging.flavors import flavor_named
from keel.packaging.manifest import MANIFEST_FILE, PackageManifest
from keel.packaging.model import PackagedModel


def read_manifest(folder: Path) -> PackageManifest:
    """The manifest of a package folder."""
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise NotFound(f"{folder} holds no {MANIFEST_FILE}",
                       hint="pass the folder a model was saved to (it holds keel-model.yaml)")
    return PackageManifest.from_yaml(path.read_bytes(), where=str(path))


def verify_files(folder: Path, manifest: PackageManifest) -> None:
    """Every file the manifest lists exists and has its recorded digest."""
    for name, recorded in manifest.files.items():
        path = folder / name
        if not _inside(folder, path):
            raise InvalidInput(f"the manifest lists {name!r}, outside the package",
                               hint="the package is damaged or hostile; do not load it")
        if not path.is_file():
            raise CorruptData(f"package file {name} is missing from {folder}",
                              hint="the package is incomplete; fetch it again")
        if hash_file(path) != recorded.digest:
            raise CorruptData(f"package file {name} does not match its recorded digest "
                              f"(it was changed after the model was saved)",
                              hint="refusing to load it; restore the package from the registry")
    if manifest.model_file not in manifest.files:
        raise CorruptData(f"the manifest's model file {manifest.model_file!r} is not among "
                          "its listed files", hint="the package is damaged; log it again")


def load_package(folder: str | Path, trust: bool = False, trusted_types: tuple[str, ...] = (),
                 uri: str = "", package_digest: str = "") -> PackagedModel:
    """Load a package folder: manifest, digests, then the model (safely).

    ``trust=True`` allows flavors that execute code (pickles) and any type in a
    skops file; ``trusted_types`` widens the skops allow-list by name only.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    verify_files(folder, manifest)
    flavor = flavor_named(manifest.flavor)
    raw = flavor.load(folder / manifest.model_file, trust=trust,
                      trusted_types=tuple(trusted_types))
    return PackagedModel(manifest=manifest, raw=raw, flavor=flavor, path=folder, uri=uri,
                         package_digest=package_digest)


def materialise_package(blobs: BlobStore, manifest_digest: str, cache: Path) -> Path:
    """A local folder with the package whose manifest has ``manifest_digest``,
    fetched from the blob store once (verified) into ``cache/<digest>``.

    The cached copy is read-only, and its ``keel-model.yaml`` must hash to the
    digest it is filed under: a folder holding another package (copied there,
    or damaged) is replaced by a fresh copy, so a name always loads its own
    model. ``load_package`` then checks every file against that manifest.
    """
    folder = cache / manifest_digest
    if _holds(folder, manifest_digest):
        return folder
    if folder.exists() or folder.is_symlink():
        _discard(folder, cache)
    manifest_bytes = blobs.get_bytes(manifest_digest)
    manifest = PackageManifest.from_yaml(manifest_bytes, where=f"package {manifest_digest[:12]}")
    temp = cache / f".{manifest_digest}.tmp-{uuid.uuid4().hex}"
    try:
        for name, entry in manifest.files.items():
            if not _inside(temp, temp / name):
                raise InvalidInput(f"the manifest lists {name!r}, outside the package",
                                   hint="the package is damaged or hostile; do not load it")
            blobs.fetch(entry.digest, temp / name)
            os.chmod(temp / name, 0o444)
        (temp / MANIFEST_FILE).write_bytes(manifest_bytes)
        os.chmod(temp / MANIFEST_FILE, 0o444)
        try:
            os.replace(temp, folder)  # another process may have won the race: fine
        except OSError:
            if not _holds(folder, manifest_digest):
                raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return folder


def _holds(folder: Path, manifest_digest: str) -> bool:
    """True if ``folder`` is a real folder whose manifest hashes to ``manifest_digest``."""
    path = folder / MANIFEST_FILE
    if folder.is_symlink() or path.is_symlink() or not path.is_file():
        return False
    return hash_file(path) == manifest_digest


def _discard(folder: Path, cache: Path) -> None:
    """Move a wrong cached package out of the way (a rename: atomic), then delete it."""
    aside = cache / f".{folder.name}.bad-{uuid.uuid4().hex}"
    try:
        os.replace(folder, aside)
    except FileNotFoundError:
        return  # another process discarded it first
    if aside.is_symlink() or not aside.is_dir():
        aside.unlink()
    else:
        shutil.rmtree(aside, ignore_errors=True)


def _inside(root: Path, path: Path) -> bool:
    return os.path.commonpath([os.path.abspath(root), os.path.abspath(path)]) == \
        os.path.abspath(root)
