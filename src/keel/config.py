"""Settings: one table of names, defaults and help, read in a stated order.

Order of sources, first wins: explicit arguments > ``KEEL_*`` environment
variables > ``keel.toml`` in the workspace root > defaults.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from keel.errors import InvalidInput, NotFound

WORKSPACE_DIR = ".keel"


@dataclass(frozen=True)
class Setting:
    """One configurable value: its name, environment variable, default and help."""

    name: str
    env: str
    default: str | None
    help: str
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("store", "KEEL_STORE", None,
            "metadata store: a SQLite path, postgresql+psycopg://... or http(s)://...; "
            "default .keel/keel.db"),
    Setting("blobs", "KEEL_BLOBS", None,
            "blob store: a folder or an fsspec URL (s3://bucket/prefix); default .keel/blobs"),
    Setting("token", "KEEL_TOKEN", None, "API token for a keel server", secret=True),
    Setting("durability", "KEEL_DURABILITY", "process",
            "what logged data survives before it is stored: 'process' (a crash of the "
            "process) or 'fsync' (a power loss too; fsyncs spools and makes SQLite commits "
            "durable, slower)"),
    Setting("remote", "KEEL_REMOTE", None,
            "data remote for push/pull: a folder or fsspec URL (s3://bucket/prefix); "
            "options such as endpoint_url go in keel.toml's [remote] table"),
)


class Secret(str):
    """A string whose repr hides its value, so tokens never reach logs."""

    def __repr__(self) -> str:
        return "'*****'"


@dataclass(frozen=True)
class ResolvedSetting:
    """A setting's value and where it came from."""

    name: str
    value: str | None
    source: str


def find_workspace(start: Path | None = None) -> Path | None:
    """The nearest folder at or above ``start`` holding ``.keel/``, like git."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / WORKSPACE_DIR).is_dir():
            return folder
    return None


def require_workspace(start: Path | None = None) -> Path:
    """Like :func:`find_workspace` but raise a hint when there is none."""
    root = find_workspace(start)
    if root is None:
        where = (start or Path.cwd()).resolve()
        raise NotFound(f"no {WORKSPACE_DIR}/ found in {where} or any folder above it",
                       hint="run `keel init` to create a workspace here")
    return root


def read_toml(root: Path | None) -> dict[str, object]:
    """The ``[keel]`` table (or top level) of ``keel.toml`` in the workspace root."""
    if root is None:
        return {}
    path = root / "keel.toml"
    if not path.is_file():
        return {}
    import tomllib  # here: most workspaces have no keel.toml (~4 ms of every command)

    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path} is not valid TOML: {exc}",
                           hint="fix the file or remove it") from exc
    table = data.get("keel", data)
    return table if isinstance(table, dict) else {}


def resolve(name: str, root: Path | None, explicit: str | None = None) -> ResolvedSetting:
    """Look a setting up in the stated order of sources."""
    setting = next((s for s in SETTINGS if s.name == name), None)
    if setting is None:
        raise InvalidInput(f"unknown setting {name!r}",
                           hint="known: " + ", ".join(s.name for s in SETTINGS))
    if explicit is not None:
        return ResolvedSetting(name, explicit, "argument")
    if os.environ.get(setting.env):
        return ResolvedSetting(name, os.environ[setting.env], setting.env)
    toml_value = read_toml(root).get(name)
    if isinstance(toml_value, dict):  # a table such as [remote] keeps its value in `url`
        toml_value = toml_value.get("url")
    if toml_value is not None:
        return ResolvedSetting(name, str(toml_value), "keel.toml")
    return ResolvedSetting(name, setting.default, "default")


def default_paths(root: Path | None) -> dict[str, str]:
    """Where the store and blobs live when nothing moves them: in the workspace."""
    if root is None:
        return {}
    folder = root / WORKSPACE_DIR
    return {"store": str(folder / "keel.db"), "blobs": str(folder / "blobs")}


def all_settings(root: Path | None) -> list[ResolvedSetting]:
    """Every setting with its value in use and its source, secrets masked (for
    ``keel config``)."""
    out = []
    paths = default_paths(root)
    for setting in SETTINGS:
        item = resolve(setting.name, root)
        if item.value is None and setting.name in paths:
            item = ResolvedSetting(item.name, paths[setting.name], "default")
        if setting.secret and item.value:
            item = ResolvedSetting(item.name, repr(Secret(item.value)), item.source)
        elif item.value:
            item = ResolvedSetting(item.name, hide_password(item.value), item.source)
        out.append(item)
    return out


def hide_password(url: str) -> str:
    """``postgresql://u:secret@h/db`` -> ``postgresql://u:*****@h/db``."""
    return re.sub(r"(://[^:/@]+):[^@/]+@", r"\1:*****@", url)
