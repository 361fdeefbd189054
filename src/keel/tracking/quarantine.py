"""Spool lines that cannot be stored are set aside here, never replayed forever.

A line the store refuses (a malformed line, a step beyond 64 bits written by
an older keel, a value the database cannot hold) would otherwise make every
later flush, and every later process's recovery, fail on it again. Each such
line goes to ``.keel/spool/quarantine/<spool name>.jsonl`` with the reason,
the good lines around it are stored, and the spool moves past it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from keel.clock import now_ms

log = logging.getLogger("keel.tracking")

FOLDER = "quarantine"


def quarantine_path(spool_path: Path) -> Path:
    """Where the set-aside lines of one spool go."""
    return spool_path.parent / FOLDER / f"{spool_path.name}.jsonl"


def set_aside(spool_path: Path, run_id: str, raw: bytes, reason: str) -> Path:
    """Append one refused line (with why) to the spool's quarantine file, durably:
    the spool's offset moves past the line only after this returns."""
    target = quarantine_path(spool_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    record = {"run_id": run_id, "spool": spool_path.name, "time": now_ms(),
              "reason": reason, "line": raw.decode("utf-8", "replace")}
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    log.warning("keel: a record of run %s could not be stored (%s); it was set aside in %s",
                run_id, reason, target)
    return target


def quarantined(spool_dir: Path) -> list[dict[str, object]]:
    """Every set-aside line of a workspace's spools (for ``keel recover``)."""
    folder = spool_dir / FOLDER
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                found.append(json.loads(line))
    return found
