"""``keel serve --export DIR MODEL``: a self-contained container build context.

The folder holds:

- ``model/``: the model package, verified against its digests;
- ``lib/keel/``: this keel's own code (no index needed to install it);
- ``requirements.txt``: every distribution keel and the model need, pinned
  to the versions installed here (the whole dependency closure), so the
  image runs what was tested;
- ``Dockerfile``: Python slim, the requirements, then ``keel serve`` on the
  package with the same server as ``keel serve``;
- ``serve.sh``: the same start command, for running the context without a
  container engine (a fresh virtual environment is enough).
"""

from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from keel.errors import InvalidInput
from keel.workspace import Workspace, resolve_workspace

# Distributions the server imports at run time besides the model's own.
SERVER_DISTRIBUTIONS = ("keel",)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*")


@dataclass(frozen=True)
class ExportedContext:
    folder: Path
    version: str
    image: str
    requirements: dict[str, str]


def export_context(model: str, folder: str | Path, ws: Workspace | None = None,
                   trust: bool = False) -> ExportedContext:
    """Write the build context for ``model`` into ``folder`` (new or empty)."""
    from keel.models.load import load_model
    from keel.models.uri import parse_model_ref
    from keel.serving.runtime import version_label

    ws = resolve_workspace(ws)
    target = Path(folder)
    if target.exists() and any(target.iterdir()):
        raise InvalidInput(f"{target} is not empty",
                           hint="export into a new folder (nothing there is overwritten)")
    loaded = load_model(model, trust=trust, ws=ws)  # verifies every file's digest
    ref = parse_model_ref(model)
    version = version_label(loaded, ref)
    name = ref.name or "model"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(loaded.path, target / "model")
    package = Path(__file__).resolve().parents[1]  # src/keel
    shutil.copytree(package, target / "lib" / "keel",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pins = pinned(["keel", *loaded.manifest.requirements])
    pins.pop("keel", None)  # shipped as code in lib/
    (target / "requirements.txt").write_text(
        "# Every distribution the server and the model need, as installed where the\n"
        "# context was exported (keel itself is in lib/).\n"
        + "".join(f"{n}=={v}\n" for n, v in sorted(pins.items())))
    trust_flag = ' "--trust",' if trust else ""
    command = (f'["python", "-m", "keel.cli.main", "serve", "/srv/model", "--host", "0.0.0.0", '
               f'"--port", "8080", "--name", "{name}", "--version-label", "{version}",'
               f'{trust_flag} "--workers", "1"]')
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    (target / "Dockerfile").write_text(f"""\
# Serves {version} with keel's model server: POST /predict, GET /health, /ready, /metrics.
FROM python:{python}-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTHONPATH=/srv/lib
WORKDIR /srv
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY lib/ lib/
COPY model/ model/
# The inference log and live figures go to a workspace inside the container;
# set KEEL_STORE / KEEL_BLOBS to send them to a shared database and object store.
RUN python -m keel.cli.main init /srv/app
WORKDIR /srv/app
EXPOSE 8080
CMD {command}
""")
    (target / "serve.sh").write_text(f"""\
#!/bin/sh
# Start the server from this folder without a container engine: run it with a
# Python {python} that has requirements.txt installed. Extra arguments go to
# keel serve (for example --port 9000).
set -e
here="$(cd "$(dirname "$0")" && pwd)"
export PYTHONPATH="$here/lib"
mkdir -p "$here/app"
[ -d "$here/app/.keel" ] || python -m keel.cli.main init "$here/app" >/dev/null
cd "$here/app"
exec python -m keel.cli.main serve "$here/model" --name {name} --version-label {version}\
{' --trust' if trust else ''} "$@"
""")
    (target / "serve.sh").chmod(0o755)
    (target / ".dockerignore").write_text("app/\n**/__pycache__\n")
    image = re.sub(r"[^a-z0-9_.\-]", "-", f"keel-{name}-{version.rpartition('/')[2]}".lower())
    return ExportedContext(target, version, image, pins)


def pinned(roots: list[str]) -> dict[str, str]:
    """``name -> installed version`` for ``roots`` and everything they require
    (base requirements only: extras are not followed)."""
    found: dict[str, str] = {}
    todo = list(roots)
    while todo:
        raw = todo.pop()
        name = _canonical(raw)
        if name in found:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional or platform-only requirement not installed here
        found[name] = dist.version
        for requirement in dist.requires or []:
            spec, _, marker = requirement.partition(";")
            if "extra" in marker or not _applies(marker):
                continue
            match = _NAME.match(spec.strip())
            if match:
                todo.append(match.group())
    return found


def _applies(marker: str) -> bool:
    marker = marker.strip()
    if not marker:
        return True
    try:
        from packaging.markers import Marker

        return Marker(marker).evaluate()
    except Exception:  # an unreadable marker: include the requirement
        return True


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
