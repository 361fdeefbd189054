"""A real keel server on 127.0.0.1 (uvicorn in a thread of the test process),
tokens of each role, and a virtual environment holding the real MLflow client."""

from __future__ import annotations

import subprocess
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from keel.server import tokens
from keel.workspace import Workspace
from tests.conftest import service_missing
from tests.live_server import running_server

# numpy and pandas: mlflow.pyfunc (log_model / load_model) needs them; the pins are keel's.
MLFLOW = "mlflow-skinny==3.17.2 numpy==2.4.6 pandas==3.1.1"
CLIENTS = Path(__file__).resolve().parents[2] / "build" / "test-venvs"


@dataclass
class Server:
    url: str
    ws: Workspace
    secrets: dict[str, str]  # role -> secret


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    ws = Workspace.open(tmp_path, create=True)
    secrets = {role: tokens.create(ws, role).secret for role in tokens.ROLES}
    with running_server(ws) as url:
        yield Server(url, ws, secrets)
    ws.close()


@pytest.fixture(scope="session")
def mlflow_python() -> Path:
    """The interpreter of a venv with the real MLflow client (made once, kept in build/)."""
    folder = CLIENTS / "mlflow"
    python = folder / "bin" / "python"
    marker = folder / ".installed"
    if not marker.exists() or marker.read_text() != MLFLOW:
        if not python.exists():
            venv.create(folder, with_pip=True)
        done = subprocess.run([str(python), "-m", "pip", "install", "-q",
                               "--disable-pip-version-check", *MLFLOW.split()],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            service_missing(f"cannot install {MLFLOW}: {done.stderr[-500:]}")
        marker.write_text(MLFLOW)
    return python
