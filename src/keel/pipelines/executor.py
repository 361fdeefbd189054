"""Where steps and trials run: inline, on a local process pool, or on a Ray cluster.

An executor takes a callable and its (picklable) arguments and returns a
``concurrent.futures.Future``. Work is shipped to other processes with
cloudpickle, so steps defined in a pipeline file or in ``__main__`` travel by
value; what a worker needs of the workspace travels as a ``WorkspaceSpec``.

- ``inline``: in this process, one at a time (the default for pipelines; what
  a debugger wants).
- ``local``: a pool of ``parallel`` worker processes started with ``spawn``
  (a forked child would inherit this process's database connections and
  background writer threads). Each worker imports keel once.
- ``ray``: ``ray.init()`` starts a local runtime (``num_cpus=parallel``) or,
  with ``address``, joins a cluster. Workers reach the metadata store by URL:
  the shared SQLite file on one machine, PostgreSQL across machines.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
from collections.abc import Callable
from typing import Any, Protocol

from keel.errors import InvalidInput, KeelError

EXECUTORS = ("inline", "local", "ray")


class Executor(Protocol):
    """Runs callables somewhere; see the module docstring."""

    name: str
    parallel: int

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]: ...
    def interrupt(self) -> None: ...
    def close(self) -> None: ...


class InlineExecutor:
    """Runs each call at once, in this process."""

    name = "inline"
    parallel = 1

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
        future: cf.Future[Any] = cf.Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # Ctrl-C is not caught: it stops the caller at once
            future.set_exception(exc)
        return future

    def interrupt(self) -> None:
        pass  # the work ran in the interrupted thread itself

    def close(self) -> None:
        pass


def _call_pickled(payload: bytes) -> bytes:
    """What a pool worker runs: unpickle the call, run it, pickle the result."""
    import cloudpickle

    fn, args = cloudpickle.loads(payload)
    return bytes(cloudpickle.dumps(fn(*args)))


# How long interrupted workers get to record their runs before they are ended.
INTERRUPT_GRACE_S = 10.0


class LocalPoolExecutor:
    """A pool of worker processes on this machine."""

    name = "local"

    def __init__(self, parallel: int) -> None:
        import multiprocessing

        self.parallel = max(1, parallel)
        self._interrupted: list[Any] = []
        self._pool = cf.ProcessPoolExecutor(self.parallel,
                                            mp_context=multiprocessing.get_context("spawn"))

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
        import cloudpickle

        inner = self._pool.submit(_call_pickled, cloudpickle.dumps((fn, args)))
        outer: cf.Future[Any] = cf.Future()

        def done(future: cf.Future[bytes]) -> None:
            try:
                outer.set_result(cloudpickle.loads(future.result()))
            except BaseException as exc:
                outer.set_exception(exc)

        inner.add_done_callback(done)
        return outer

    def interrupt(self) -> None:
        """Ctrl-C reached only this process: pass it on to the workers, so that what
        they run ends as an interrupted run would (KILLED), and queued work is dropped."""
        import signal

        self._interrupted = list(getattr(self._pool, "_processes", {}).values())
        for process in self._interrupted:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGINT)

    def close(self) -> None:
        if not self._interrupted:
            self._pool.shutdown(wait=True, cancel_futures=True)
            return
        # The pool hands each worker its next call before the current one ends,
        # so cancelling futures cannot stop a call already handed over: give the
        # interrupted calls time to record their runs as KILLED, then end the
        # workers rather than wait for work nobody wants any more.
        import time

        self._pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + INTERRUPT_GRACE_S
        for process in self._interrupted:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in self._interrupted:
            if process.is_alive():
                process.terminate()
                process.join(5)
        self._interrupted = []


class RayExecutor:
    """Tasks on a Ray runtime: a local one, or a cluster at ``address``."""

    name = "ray"

    def __init__(self, parallel: int, address: str | None = None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise InvalidInput("the Ray executor needs Ray",
                               hint="pip install 'keel[ray]'") from exc
        self.parallel = max(1, parallel)
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            _init_ray(ray, self.parallel, address)
            self._started = True
        self._remote = ray.remote(num_cpus=1)(_call_pickled)
        self._refs: list[Any] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
        import cloudpickle

        ref = self._remote.remote(cloudpickle.dumps((fn, args)))
        self._refs.append(ref)
        outer: cf.Future[Any] = cf.Future()

        def done(inner: cf.Future[bytes]) -> None:
            try:
                outer.set_result(cloudpickle.loads(inner.result()))
            except BaseException as exc:
                outer.set_exception(_unwrap(exc))

        ref.future().add_done_callback(done)
        return outer

    def interrupt(self) -> None:
        """Cancel what has not finished: Ray raises KeyboardInterrupt in running tasks."""
        for ref in self._refs:
            with contextlib.suppress(Exception):
                self._ray.cancel(ref)

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()


def _init_ray(ray: Any, parallel: int, address: str | None) -> None:
    # A head node on loopback must not advertise the machine's other address,
    # or clients wait for it forever; the dashboard costs ~2 s of start-up.
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                               "configure_logging": False}
    try:
        if address:
            target = _ray_address(address)
            _check_reachable(target)  # ray.init retries an unreachable head for minutes
            ray.init(address=target, **options)
        else:
            ray.init(num_cpus=parallel, **options)
    except Exception as exc:  # ConnectionError, TimeoutError, RuntimeError...
        raise KeelError(f"cannot reach the Ray cluster at {address}: {exc}" if address else
                        f"cannot start a local Ray runtime: {exc}",
                        hint="check the address (HOST:PORT of the head node, reachable from "
                             "here) and that the head runs the same Ray version") from exc


def _ray_address(address: str) -> str:
    if "://" in address or address == "auto":
        return address
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise InvalidInput(f"bad Ray address {address!r}", hint="write HOST:PORT, e.g. "
                                                                "10.0.0.5:6379")
    return address


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Connect to the head's port once before handing the address to Ray."""
    import socket

    if address == "auto":
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        raise ConnectionError(f"nothing answers at {host}:{port} ({exc})") from exc


def _unwrap(exc: BaseException) -> BaseException:
    """Ray wraps a task's exception in RayTaskError; give back the original."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def make_executor(name: str, parallel: int = 1, address: str | None = None) -> Executor:
    """The executor called ``name`` (inline, local or ray)."""
    if name == "inline" or (name == "local" and parallel <= 1 and address is None):
        return InlineExecutor()
    if name == "local":
        return LocalPoolExecutor(parallel)
    if name == "ray":
        return RayExecutor(parallel, address)
    raise InvalidInput(f"unknown executor {name!r}", hint="use local or ray")
