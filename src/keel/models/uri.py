"""Model references: ``models:/churn@champion``, ``models:/churn/3``,
``runs:/<run id>/model``, a package folder, and the CLI's short ``churn/3`` or
``churn@champion``."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from keel.errors import InvalidInput, NotFound
from keel.names import check_identifier

_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference. Exactly one of (``version``, ``alias``) is set for
    registry references; neither means "the latest version"."""

    kind: str                   # "registry", "run" or "path"
    name: str = ""              # registry: model name
    version: int | None = None
    alias: str | None = None
    run_id: str = ""            # run: run id (or a unique prefix)
    artifact_path: str = ""     # run: folder inside the run
    path: str = ""              # path: a package folder

    def __str__(self) -> str:
        if self.kind == "registry":
            if self.alias:
                return f"models:/{self.name}@{self.alias}"
            return f"models:/{self.name}/{self.version or 'latest'}"
        if self.kind == "run":
            return f"runs:/{self.run_id}/{self.artifact_path}"
        return self.path


def check_model_name(name: str) -> str:
    """A model name: letters, digits, ``_ . -``; no path separators (see ``keel.names``)."""
    return check_identifier(name, "model name", example="churn-eu")


def check_alias(alias: str) -> str:
    """An alias: a letter, then letters, digits, ``_ -`` (``champion``, ``challenger``)."""
    if not isinstance(alias, str) or not _ALIAS.match(alias) or alias == "latest" \
            or alias.isdigit():
        raise InvalidInput(f"bad alias {alias!r}",
                           hint="an alias starts with a letter and holds letters, digits, "
                                "'_' or '-', e.g. champion; 'latest' is reserved")
    return alias


def parse_model_ref(text: str, allow_path: bool = True) -> ModelRef:
    """Parse any model reference keel accepts (see the module docstring)."""
    if text.startswith("models:/"):
        return _registry(text[len("models:/"):], text)
    if text.startswith("runs:/"):
        run_id, _, artifact = text[len("runs:/"):].partition("/")
        if not run_id or not artifact:
            raise InvalidInput(f"bad run model URI {text!r}",
                               hint="write runs:/<run id>/<artifact path>, e.g. runs:/3f2a/model")
        return ModelRef("run", run_id=run_id, artifact_path=artifact.strip("/"))
    if "://" in text:
        raise InvalidInput(f"unknown model URI scheme in {text!r}",
                           hint="use models:/NAME@ALIAS, models:/NAME/VERSION or "
                                "runs:/RUN_ID/PATH")
    if allow_path and os.path.isfile(os.path.join(text, "keel-model.yaml")):
        return ModelRef("path", path=text)
    try:
        return _registry(text, text)
    except InvalidInput:
        if allow_path and os.path.exists(text):  # meant as a folder, but not a package
            raise NotFound(f"{text} is not a model package (it holds no keel-model.yaml)",
                           hint="pass a folder written by keel (run.log_model or "
                                "keel.packaging.save_package), runs:/<run id>/model or "
                                "models:/NAME@ALIAS") from None
        raise


def _registry(body: str, original: str) -> ModelRef:
    if "@" in body:
        name, _, alias = body.partition("@")
        if alias == "latest":
            return ModelRef("registry", name=check_model_name(name))
        return ModelRef("registry", name=check_model_name(name), alias=check_alias(alias))
    name, sep, version = body.partition("/")
    check_model_name(name)
    if not sep or version == "latest":
        return ModelRef("registry", name=name)
    if not version.isdigit() or int(version) < 1:
        raise InvalidInput(f"bad model version in {original!r}",
                           hint="write NAME/1, NAME/2, ... NAME@ALIAS or NAME/latest")
    return ModelRef("registry", name=name, version=int(version))
