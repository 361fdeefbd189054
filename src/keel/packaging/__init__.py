"""Portable model packages: a folder with ``keel-model.yaml`` and the model's files.

>>> manifest = save_package(model, "out/model", input_example=X[:5])
>>> loaded = load_package("out/model")          # verified, never runs pickled code
>>> loaded.predict(X)
"""

from keel.packaging.load import load_package, materialise_package
from keel.packaging.manifest import FORMAT_VERSION, MANIFEST_FILE, PackageManifest
from keel.packaging.model import PackagedModel
from keel.packaging.save import save_package
from keel.packaging.signature import Signature

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "PackageManifest",
    "PackagedModel",
    "Signature",
    "load_package",
    "materialise_package",
    "save_package",
]
