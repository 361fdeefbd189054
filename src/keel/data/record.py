"""Version records read from a remote (``datasets/NAME/N.json``), checked before use.

A remote is shared storage: anyone with write access to it can put any
record there. A record is accepted only if it is one ``keel data push``
could have written: its name passes the same check as ``keel data add``,
its version is an int >= 1, it is filed under ``NAME/N.json`` for its own
name and version, every digest is hex BLAKE3, and its counts are ints >= 0.

Its ``source`` (where the data was added from) is the default destination
of ``keel data checkout``. A source that is absolute or leaves the
workspace (``..``) names a folder on the machine that pushed it, or one an
attacker chose, so the pulled copy keeps no source (``""``): checkout then
asks for a destination instead of writing there.
"""

from __future__ import annotations

import json
import re
from typing import Any

from keel.blobs.digest import is_digest
from keel.data.ref import check_name
from keel.entities import DatasetVersion
from keel.errors import InvalidInput

_SEGMENT = r"(?!\.\.?(?:/|\Z))[^/\\\x00-\x1f\x7f-\x9f]+"
_INSIDE = re.compile(rf"\.|(?![A-Za-z]:){_SEGMENT}(?:/{_SEGMENT})*")  # '.' is the root
_HINT = ("the remote holds a record keel would not write (damaged, or written by "
         "someone else); delete it from the remote, or push that version again from a "
         "trusted workspace")


def decode_record(where: str, data: bytes) -> DatasetVersion:
    """The version a record's bytes describe; ``where`` is its path under the remote's
    ``datasets/`` folder (``transactions/3.json``). :class:`InvalidInput` naming the
    record if anything in it is not what ``keel data push`` writes."""
    label = where.removesuffix(".json").replace("/", "@", 1) if "/" in where else where
    try:
        body = json.loads(data)
    except ValueError as exc:
        raise _refused(label, f"it is not JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise _refused(label, "it is not a JSON object")
    name, version = body.get("dataset"), body.get("version")
    try:
        check_name(name)
    except InvalidInput as exc:
        raise _refused(label, f"its dataset name {name!r} is not one keel accepts") from exc
    if type(version) is not int or version < 1:
        raise _refused(label, f"its version {version!r} is not an integer >= 1")
    label = f"{name}@{version}"
    if where != f"{name}/{version}.json":
        raise _refused(label, f"it is filed as datasets/{where}, not "
                              f"datasets/{name}/{version}.json")
    _check_fields(label, body)
    fields = {k: v for k, v in body.items() if k in DatasetVersion.__dataclass_fields__}
    source = fields.get("source")
    if isinstance(source, str) and not _INSIDE.fullmatch(source):
        fields["source"] = ""  # see the module docstring
    try:
        return DatasetVersion.from_dict(fields)
    except TypeError as exc:
        raise _refused(label, f"it lacks a field ({exc})") from exc


def _check_fields(label: str, body: dict[str, Any]) -> None:
    if not is_digest(body.get("manifest_digest")):  # type: ignore[arg-type]
        raise _refused(label, f"its manifest digest {body.get('manifest_digest')!r} is not "
                              "a BLAKE3 hex digest")
    for key in ("profiles_digest", "checks_digest"):
        value = body.get(key)
        if value is not None and not is_digest(value):
            raise _refused(label, f"its {key} {value!r} is not a BLAKE3 hex digest")
    for key in ("files", "bytes", "created_at", "id"):
        value = body.get(key, 0)
        if type(value) is not int or value < 0:
            raise _refused(label, f"its {key} {value!r} is not an integer >= 0")
    for key in ("message", "user", "source"):
        if not isinstance(body.get(key, ""), str):
            raise _refused(label, f"its {key} is not text")
    if body.get("checks_passed") not in (None, True, False):
        raise _refused(label, "its checks_passed is not true, false or null")


def _refused(label: str, why: str) -> InvalidInput:
    return InvalidInput(f"refused the remote's record of {label}: {why}; nothing was pulled",
                        hint=_HINT)
