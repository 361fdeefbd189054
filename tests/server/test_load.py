"""A real ``keel server --workers 2`` on PostgreSQL under load, with a worker
killed mid-load: no acknowledged write is lost or stored twice.

The clients retry as MLflow's does (connection errors, 408, 429 and 5xx, the
same batch again); the server makes that safe by storing a metric point it
already holds (same key, step, timestamp and value) once, checked inside the
write's transaction with the run's row locked, so copies arriving together
are stored once too. Latency
and throughput are printed, never asserted: timing goals live in bench/.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from keel.server import tokens
from keel.workspace import Workspace
from tests.serving.conftest import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SECONDS = float(os.environ.get("KEEL_LOAD_SECONDS", "60"))
CLIENTS = 20
POINTS = 50  # metric points per log-batch, each at its own step
GIVE_UP = 120.0  # seconds a client keeps retrying one request
RETRIED = (408, 429)  # and every 5xx, as MLflow's client does


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Client:
    """What one client sent and what the server acknowledged."""

    run_id: str = ""
    acked: list[tuple[int, int, float]] = field(default_factory=list)  # (step, time, value)
    latencies: list[float] = field(default_factory=list)  # of each acknowledged request
    retries: Counter[str] = field(default_factory=Counter)  # reason -> count


@pytest.fixture
def workspace(tmp_path: Path, postgres_url: str) -> Iterator[tuple[Workspace, str]]:
    """A workspace on a fresh PostgreSQL database and an editor's secret for it."""
    ws = Workspace.open(tmp_path / "ws", create=True, store=postgres_url)
    yield ws, tokens.create(ws, "editor").secret
    ws.close()


@contextlib.contextmanager
def keel_server(ws: Workspace, workers: int) -> Iterator[Server]:
    """``keel server`` in its own process on 127.0.0.1, stopped (SIGTERM) at the end."""
    port, log = free_port(), ws.root / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "keel.cli.main", "server", "--workers", str(workers),
             "--port", str(port), "--store", ws.store_url, "--root", str(ws.root)],
            stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait(lambda: _healthy(server) and len(_workers(process.pid)) == workers, 60,
              f"the server did not start:\n{_tail(log)}")
        yield server
    finally:
        started = _workers(process.pid)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        for pid in started:  # none should outlive their parent; never leave one behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_load_with_a_worker_killed_loses_and_doubles_nothing(
        workspace: tuple[Workspace, str], capsys: pytest.CaptureFixture[str]) -> None:
    ws, secret = workspace
    clients = [Client() for _ in range(CLIENTS)]
    with keel_server(ws, workers=2) as server:
        started = time.monotonic()
        deadline = started + SECONDS
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(_log_until, server.url, secret, deadline, client, n)
                       for n, client in enumerate(clients)]
            time.sleep(SECONDS * 0.4)
            killed = _workers(server.process.pid)[0]
            os.kill(killed, signal.SIGKILL)
            killed_at = time.monotonic()
            # uvicorn's supervisor notices a dead worker within ~0.5 s and starts another.
            _wait(lambda: _replaced(server.process.pid, killed), 60,
                  f"no worker replaced the killed one:\n{_tail(server.log)}")
            restarted = time.monotonic() - killed_at
            for future in futures:
                future.result()
        elapsed = time.monotonic() - started
        assert server.process.poll() is None, _tail(server.log)

    lost = duplicated = 0
    for client in clients:
        stored = [(p.step, p.timestamp, p.value)
                  for p in ws.store.metric_history(client.run_id, "loss")]
        lost += sum((Counter(client.acked) - Counter(stored)).values())
        duplicated += sum((Counter(stored) - Counter(client.acked)).values())
    acked = sum(len(c.acked) for c in clients)
    retries = sum((c.retries for c in clients), Counter[str]())
    latencies = sorted(t for c in clients for t in c.latencies)
    with capsys.disabled():
        print(f"\nload: {CLIENTS} clients, {elapsed:.1f} s, 2 workers on PostgreSQL; worker "
              f"{killed} killed at {killed_at - started:.1f} s, replaced in {restarted:.1f} s\n"
              f"  {len(latencies):,} requests acknowledged ({len(latencies) / elapsed:,.0f}/s), "
              f"{acked:,} metric points ({acked / elapsed:,.0f}/s)\n"
              f"  latency p50 {_ms(latencies, 0.50)}, p99 {_ms(latencies, 0.99)}, "
              f"max {_ms(latencies, 1.0)}\n"
              f"  retried: {dict(retries) or 'none'}; lost {lost}, duplicated {duplicated}")
    assert acked > 0
    assert sum(retries.values()) > 0, "the kill was not felt: nothing to retry"
    # Only connections broke: every request a worker got, it answered without a 5xx.
    assert [reason for reason in retries if reason.isdigit()] == [], _tail(server.log)
    assert (lost, duplicated) == (0, 0)


def test_a_batch_sent_twice_at_once_is_stored_once(workspace: tuple[Workspace, str]) -> None:
    # A client that times out and retries while the first request is still being
    # served sends the same batch twice at once, possibly to both workers.
    ws, secret = workspace
    copies, rounds = 4, 30
    with keel_server(ws, workers=2) as server:
        client = Client()
        with httpx.Client(base_url=server.url, timeout=30,
                          headers={"Authorization": f"Bearer {secret}"}) as http:
            client.run_id = _send(http, "runs/create", {"experiment_id": "0"},
                                  client).json()["run"]["info"]["run_id"]
        barrier = threading.Barrier(copies)
        bodies = [_batch(client.run_id, n, random.Random(n))[1] for n in range(rounds)]

        def send_all(_: int) -> None:
            with httpx.Client(base_url=server.url, timeout=30,
                              headers={"Authorization": f"Bearer {secret}"}) as http:
                for body in bodies:
                    barrier.wait(30)
                    _send(http, "runs/log-batch", body, Client())

        with ThreadPoolExecutor(copies) as pool:
            list(pool.map(send_all, range(copies)))
    stored = Counter((p.step, p.timestamp) for p in ws.store.metric_history(client.run_id,
                                                                              "loss"))
    assert len(stored) == rounds * POINTS
    assert {k: n for k, n in stored.items() if n > 1} == {}


# -- the clients -------------------------------------------------------------------------


def _log_until(url: str, secret: str, deadline: float, client: Client, seed: int) -> None:
    """Create a run, then log batches of points until ``deadline``; the batch in
    flight at the deadline is finished (retried until acknowledged)."""
    rng = random.Random(seed)
    with httpx.Client(base_url=url, timeout=30,
                      headers={"Authorization": f"Bearer {secret}"}) as http:
        created = _send(http, "runs/create", {"experiment_id": "0", "run_name": f"load-{seed}"},
                        client)
        client.run_id = created.json()["run"]["info"]["run_id"]
        number = 0
        while time.monotonic() < deadline:
            points, body = _batch(client.run_id, number, rng)
            _send(http, "runs/log-batch", body, client)
            client.acked += points
            number += 1


def _batch(run_id: str, number: int, rng: random.Random
           ) -> tuple[list[tuple[int, int, float]], dict[str, Any]]:
    """Batch ``number`` of a run: POINTS points at their own steps, one timestamp."""
    stamp = int(time.time() * 1000)
    points = [(number * POINTS + i, stamp, rng.random()) for i in range(POINTS)]
    return points, {"run_id": run_id, "metrics": [
        {"key": "loss", "value": value, "step": step, "timestamp": stamp}
        for step, stamp, value in points]}


def _send(http: httpx.Client, path: str, body: dict[str, Any], client: Client
          ) -> httpx.Response:
    """POST ``body`` until acknowledged, retrying the same body as MLflow's client
    does; a refusal (4xx) fails the test."""
    give_up = time.monotonic() + GIVE_UP
    while True:
        start = time.monotonic()
        try:
            response = http.post("/api/2.0/mlflow/" + path, json=body)
        except httpx.TransportError as exc:  # the worker died with the connection
            reason = type(exc).__name__
        else:
            if response.status_code == 200:
                client.latencies.append(time.monotonic() - start)
                return response
            if response.status_code < 500 and response.status_code not in RETRIED:
                raise AssertionError(f"{path}: {response.status_code} {response.text}")
            reason = str(response.status_code)
        client.retries[reason] += 1
        if time.monotonic() > give_up:
            raise AssertionError(f"{path} not acknowledged in {GIVE_UP:.0f} s ({reason})")
        time.sleep(0.05)


# -- the server's processes ---------------------------------------------------------------


def _workers(pid: int) -> list[int]:
    """uvicorn's worker processes under ``pid``: the children multiprocessing
    spawned (not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid and b"spawn_main" in command:
            found.append(int(entry.name))
    return sorted(found)


def _replaced(pid: int, killed: int) -> bool:
    workers = _workers(pid)
    return len(workers) == 2 and killed not in workers


def _healthy(server: Server) -> bool:
    if server.process.poll() is not None:
        raise AssertionError(f"the server exited:\n{_tail(server.log)}")
    try:
        return httpx.get(server.url + "/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _wait(condition: Any, seconds: float, message: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.1)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""


def _ms(sorted_seconds: list[float], quantile: float) -> str:
    if not sorted_seconds:
        return "-"
    index = min(len(sorted_seconds) - 1, int(quantile * len(sorted_seconds)))
    return f"{sorted_seconds[index] * 1000:.0f} ms"
