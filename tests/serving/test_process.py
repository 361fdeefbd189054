"""``keel serve`` as users run it: its own process, several workers, signals, and the
exported container context started from a fresh virtual environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import venv
from collections import Counter
from pathlib import Path

import httpx
import pytest

import keel
from keel.serving import rollout
from tests.conftest import run_keel
from tests.serving.conftest import Registry, body, free_port, rows, wait_for


def _start(args: list[str], cwd: Path, env: dict[str, str] | None = None
           ) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen([*args, "--port", str(port)], cwd=cwd, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {process.communicate()[1]}")
        try:
            return httpx.get(f"{url}/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(ready, timeout=120, what="the server to be ready")
    return process, url


def _stop(process: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[int, str]:
    process.send_signal(sig)
    try:
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return process.returncode, err


KEEL = [sys.executable, "-m", "keel.cli.main"]


def test_two_workers_share_the_deployment_and_shutdown_flushes_the_log(
        registry: Registry) -> None:
    rollout.create("prod", "churn@champion", registry.ws)
    process, url = _start([*KEEL, "serve", "--deployment", "prod", "--workers", "2",
                           "--poll-seconds", "0.2", "--stats-seconds", "0.5",
                           "--log-flush-seconds", "30"], registry.root)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            answers = [client.post("/predict", json=body(rows(1, seed=i))).json()
                       for i in range(100)]
            assert {a["model_version"] for a in answers} == {registry.versions["champion"]}
            rollout.canary("prod", "churn@challenger", 50, registry.ws)

            def both_versions() -> bool:
                got = Counter(client.post("/predict", json=body(rows(1))).json()
                              ["model_version"] for _ in range(40))
                return len(got) == 2

            wait_for(both_versions, what="every worker to follow the canary")
            metrics = client.get("/metrics").text
            assert "keel_requests_total" in metrics
    finally:
        code, err = _stop(process)
    assert code == 0, err
    # The log flushes every 30 s here: only a graceful shutdown can have written it.
    table = keel.inference_log("prod", registry.ws).read()
    assert {a["request_id"] for a in answers} <= set(table["request_id"])


def test_serve_refuses_bad_arguments_before_opening_a_port(registry: Registry) -> None:
    neither = run_keel("serve")
    assert neither.returncode == 1 and "name what to serve" in neither.stderr
    missing = run_keel("serve", "--deployment", "nope")
    assert missing.returncode == 1 and "no deployment 'nope'" in missing.stderr
    untrusted = run_keel("serve", f"models:/{registry.versions['flaky']}")
    assert untrusted.returncode == 1 and "--trust" in untrusted.stderr
    assert run_keel("serve", "models:/churn@champion", "--sample", "2").returncode == 1


@pytest.mark.slow
def test_the_exported_context_serves_from_a_fresh_virtual_environment(
        registry: Registry, tmp_path: Path) -> None:
    context = tmp_path / "image"
    exported = run_keel("serve", "--export", str(context), "models:/churn@champion")
    assert exported.returncode == 0, exported.stderr
    assert {"Dockerfile", "requirements.txt", "serve.sh", "model", "lib"} <= \
        {p.name for p in context.iterdir()}
    dockerfile = (context / "Dockerfile").read_text()
    assert "pip install --no-cache-dir -r requirements.txt" in dockerfile
    assert registry.versions["champion"] in dockerfile
    pins = (context / "requirements.txt").read_text().splitlines()
    pinned = {line.split("==")[0] for line in pins if "==" in line}
    assert {"scikit-learn", "fastapi", "uvicorn", "pandas", "skops"} <= pinned
    assert all("==" in line for line in pins if line and not line.startswith("#"))
    # A fresh environment with only the pinned requirements, as the image would have.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q",
                              "--disable-pip-version-check", "-r",
                              str(context / "requirements.txt")],
                             capture_output=True, text=True, timeout=1200, check=False)
    assert install.returncode == 0, install.stderr[-2000:]
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("KEEL_", "VIRTUAL"))}
    clean_env["PATH"] = f"{env_dir / 'bin'}:{clean_env.get('PATH', '')}"
    process, url = _start(["sh", str(context / "serve.sh")], tmp_path, env=clean_env)
    try:
        answer = httpx.post(f"{url}/predict", json=body(rows(2)), timeout=30).json()
        assert answer["model_version"] == registry.versions["champion"]
        assert len(answer["predictions"]) == 2
    finally:
        code, err = _stop(process, signal.SIGINT)  # Ctrl-C: drains, then exits 0
    assert code == 0, err
    # The context's own workspace holds the log, flushed by the graceful stop.
    served = keel.Workspace.open(context / "app")
    assert len(keel.inference_log("churn", served).read()) == 2
    served.close()
