"""Peer tools for side-by-side benchmarks, each in its own virtual environment.

MLflow, DVC and Evidently pin versions that clash with keel's dependencies
(MLflow wants pyarrow<26), so each gets ``bench/.venv-NAME`` and is driven as
a subprocess that prints its timings as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Each value is what ``pip install`` gets, space-separated when a peer needs a
# companion pin: Evidently 0.7.23 fails to import under pandas 3.
PEERS = {"mlflow": "mlflow==3.17.2", "dvc": "dvc==3.67.1",
         "evidently": "evidently==0.7.23 pandas<3"}


def peer_python(name: str) -> Path:
    """The peer's interpreter, creating and installing its venv on first use."""
    folder = HERE / f".venv-{name}"
    python = folder / "bin" / "python"
    marker = folder / ".installed"
    if not marker.exists():
        print(f"creating {folder.name} with {PEERS[name]} (first run only)...", file=sys.stderr)
        if not python.exists():
            venv.create(folder, with_pip=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEERS[name].split()],
                       check=True)
        marker.write_text(PEERS[name])
    return python


def run_peer(name: str, script: str, *args: str, cwd: Path | None = None) -> dict[str, Any]:
    """Run ``bench/<script>`` with the peer's interpreter; return the JSON it prints last."""
    out = subprocess.run([str(peer_python(name)), str(HERE / script), *args], cwd=cwd,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def ratio(peer: float, ours: float) -> float:
    """How many times faster keel is (peer time / keel time)."""
    return peer / ours if ours > 0 else float("inf")
