"""Where a run came from: code commit and diff, entry point, environment, host."""

from __future__ import annotations

import getpass
import importlib.metadata
import json
import os
import platform
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

# Git state is re-read at most this often per process and folder: a loop of 200
# short runs then shares one `git status` (~10 ms each) instead of paying per run.
GIT_TTL_S = 2.0
_git_cache: dict[str, tuple[float, GitState]] = {}


@dataclass(frozen=True)
class GitState:
    """The code a run came from; ``status`` says why fields are missing."""

    status: str  # clean | dirty | not a git repository | git not installed
    commit: str | None = None
    branch: str | None = None
    remote: str | None = None
    root: str | None = None
    diff: str = ""


@dataclass(frozen=True)
class Provenance:
    """Tags and artifacts recorded at the start of every run."""

    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, bytes] = field(default_factory=dict)


def capture(cwd: Path | None = None) -> Provenance:
    """Everything keel records about a run's origin, as tags and artifacts."""
    cwd = (cwd or Path.cwd()).resolve()
    git = git_state(cwd)
    tags = {
        "keel.git.status": git.status,
        "keel.source.entrypoint": _entry_point(git.root),
        "keel.source.argv": json.dumps(sys.argv),
        "keel.python": platform.python_version(),
        "keel.platform": platform.platform(terse=True),
        "keel.host": socket.gethostname(),
        "keel.user": current_user(),
    }
    if git.commit:
        tags["keel.git.commit"] = git.commit
        tags["keel.git.dirty"] = "true" if git.status == "dirty" else "false"
    if git.branch:
        tags["keel.git.branch"] = git.branch
    if git.remote:
        tags["keel.git.remote"] = git.remote
    artifacts = {"keel/requirements.txt": requirements().encode()}
    if git.diff:
        artifacts["keel/git.diff"] = git.diff.encode()
    return Provenance(tags, artifacts)


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def _entry_point(git_root: str | None) -> str:
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    if not script:
        return "<interactive>"
    path = Path(script).resolve()
    if git_root:
        try:
            return str(path.relative_to(git_root))
        except ValueError:
            pass
    return str(path)


@cache
def requirements() -> str:
    """``pip freeze``-style lines for the running environment (read once per process,
    from package metadata: 100x faster than running pip)."""
    seen = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower() not in seen:
            seen[name.lower()] = f"{name}=={dist.version}"
    return "\n".join(sorted(seen.values(), key=str.lower)) + "\n"


def git_state(cwd: Path) -> GitState:
    """The git state of ``cwd``, cached for ``GIT_TTL_S`` seconds."""
    key = str(cwd)
    hit = _git_cache.get(key)
    if hit and time.monotonic() - hit[0] < GIT_TTL_S:
        return hit[1]
    state = _read_git(cwd)
    _git_cache[key] = (time.monotonic(), state)
    return state


def _git(cwd: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                             timeout=30, check=False)
    except FileNotFoundError:
        raise
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def _read_git(cwd: Path) -> GitState:
    try:
        root = _git(cwd, "rev-parse", "--show-toplevel")
    except FileNotFoundError:
        return GitState(status="git not installed")
    if root is None:
        return GitState(status="not a git repository")
    commit = (_git(cwd, "rev-parse", "HEAD") or "").strip() or None
    branch = (_git(cwd, "rev-parse", "--abbrev-ref", "HEAD") or "").strip() or None
    remote = (_git(cwd, "config", "--get", "remote.origin.url") or "").strip() or None
    porcelain = _git(cwd, "status", "--porcelain") or ""
    diff = ""
    if porcelain.strip():
        diff = (_git(cwd, "diff", "HEAD") or "") if commit else ""
        untracked = [line[3:] for line in porcelain.splitlines() if line.startswith("??")]
        if untracked:
            diff += "".join(f"# untracked: {name}\n" for name in untracked)
    return GitState(status="dirty" if porcelain.strip() else "clean", commit=commit,
                    branch=None if branch == "HEAD" else branch,
                    remote=strip_credentials(remote) if remote else None,
                    root=root.strip(), diff=diff)


def strip_credentials(url: str) -> str:
    """Drop ``user:token@`` from a remote URL so secrets never reach the store."""
    return re.sub(r"(?<=://)[^/@]+@", "", url)
