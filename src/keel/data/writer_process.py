"""A second writer for big checkouts: a forked process that creates a share of the files.

Why a process and not a thread: creating a small file is three system calls
of a few microseconds each, and after each one a thread needs the GIL back.
Two writer threads spend that time handing the GIL to each other: 20,000
x 4 KiB files on the 2-core VM took 0.27-0.31 s with two threads and
0.28-0.32 s with one, where one forked process writing half of them beside
the parent took 0.18-0.24 s for all (the kernel creates files in two
folders at once; only the GIL serialised the threads).

The child is given only what it can do without the parent: fresh files
(created at their final names with ``O_EXCL``, so no temporary name has to
be renamed by the parent on commit) from a local blob store (slices of the
packs the parent mapped before the fork, which the child shares, or loose
blobs it copies by path). Its folders are made by the parent before the
fork, so that the parent's rollback knows them. The child never returns
into the caller's code: it writes its share and leaves with ``os._exit``,
touching no lock, database or stream it inherited.

Parent and child talk through one shared page (:class:`Channel`): bytes
written (for the progress bar), the files the child created (a rollback
removes exactly those), a stop flag the parent raises when its own share
fails, and the child's error (errno and file) when the child's share fails.
"""

from __future__ import annotations

import gc
import json
import mmap
import os
import struct
import sys
import warnings
from collections.abc import Callable
from types import TracebackType

from keel.errors import KeelError

# stop flag (parent -> child), state, errno, bytes written, files created, message length
_HEADER = struct.Struct("<BBxxIQQI")
_PAGE = 1 << 16  # the header and the error's JSON (a file name can be 4 KiB)
RUNNING, FINISHED, FAILED, CRASHED = 0, 1, 2, 3


def available() -> bool:
    """True where a checkout may fork a writer: Linux (``fork`` elsewhere is either
    missing, or unsafe beside system frameworks, as on macOS)."""
    return sys.platform.startswith("linux") and hasattr(os, "fork")


class Channel:
    """The page parent and child share (see the module docstring)."""

    def __init__(self) -> None:
        self._page = mmap.mmap(-1, _PAGE)  # anonymous and shared: survives the fork

    def _read(self) -> tuple[int, int, int, int, int, int]:
        return _HEADER.unpack_from(self._page, 0)

    def _write(self, **changes: int) -> None:
        stop, state, code, written, created, length = self._read()
        values = {"stop": stop, "state": state, "code": code, "written": written,
                  "created": created, "length": length, **changes}
        _HEADER.pack_into(self._page, 0, values["stop"], values["state"], values["code"],
                          values["written"], values["created"], values["length"])

    # the parent's side
    def stop(self) -> None:
        """Ask the child to stop at its next check (every few hundred files)."""
        self._page[0] = 1

    @property
    def written(self) -> int:
        """Bytes the child has written so far."""
        return self._read()[3]

    @property
    def failed(self) -> bool:
        """True once the child has stopped on an error."""
        return self._read()[1] in (FAILED, CRASHED)

    # the child's side
    def stopped(self) -> bool:
        return self._page[0] == 1

    def progress(self, written: int) -> None:
        """Bytes written so far (for the parent's progress bar)."""
        self._write(written=written)

    def record_created(self, created: int) -> None:
        """How many files of its share, in order, the child created."""
        self._write(created=created)

    def finish(self, error: BaseException | None) -> None:
        """Record the outcome (read by the parent once the child has exited)."""
        if error is None:
            self._write(state=FINISHED)
            return
        code = error.errno if isinstance(error, OSError) and error.errno else 0
        detail = {"type": type(error).__name__, "message": str(error),
                  "strerror": getattr(error, "strerror", None),
                  "filename": _text(getattr(error, "filename", None))}
        body = json.dumps(detail).encode()[:_PAGE - _HEADER.size]
        self._page[_HEADER.size:_HEADER.size + len(body)] = body
        self._write(code=code, length=len(body), state=FAILED)

    def outcome(self) -> tuple[int, BaseException | None]:
        """(files the child created, its error or None), read after it exited."""
        _stop, state, code, _written, created, length = self._read()
        if state == FINISHED:
            return created, None
        if state == RUNNING:  # it died without a word (killed, out of memory)
            return -1, KeelError("the process writing half of the files ended unexpectedly; "
                                 "nothing was changed",
                                 hint="check the system log (out of memory?), then try again")
        detail = json.loads(bytes(self._page[_HEADER.size:_HEADER.size + length]))
        if code:
            return created, OSError(code, detail["strerror"] or os.strerror(code),
                                    detail["filename"])
        return created, KeelError(f"writing files failed ({detail['type']}: "
                                  f"{detail['message']}); nothing was changed",
                                  hint="try again; if it persists, report it with this message")

    def close(self) -> None:
        self._page.close()


class WriterProcess:
    """A forked child running ``write(channel)``; the parent waits for it on exit
    from the ``with`` block (stopping it first if the block failed).

    Example::

        with WriterProcess(write_share) as child:  # write_share(channel) runs in the child
            ...  # the parent's own share
        created, error = child.created, child.error
    """

    def __init__(self, write: Callable[[Channel], None]) -> None:
        self.channel = Channel()
        self.created = -1  # files the child created; -1 if unknown (it crashed)
        self.written = 0  # bytes the child wrote
        self.error: BaseException | None = None
        with warnings.catch_warnings():
            # Python 3.12+ warns when a process with threads forks (a pack is being
            # checked on one): the child only makes system calls on what it was
            # given and leaves with os._exit (see the module docstring).
            warnings.simplefilter("ignore", DeprecationWarning)
            self._pid = os.fork()
        if self._pid == 0:  # the child: never returns
            _run_child(write, self.channel)

    def __enter__(self) -> WriterProcess:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self.channel.stop()
        self.wait()

    def wait(self) -> None:
        """Wait for the child and read its outcome (once)."""
        if self._pid <= 0:
            return
        while True:
            try:
                os.waitpid(self._pid, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:  # reaped by someone else's SIGCHLD handler
                break
            except BaseException:  # Ctrl-C while waiting: stop it, and still wait
                self.channel.stop()
                continue
        self._pid = 0
        self.written = self.channel.written
        self.created, self.error = self.channel.outcome()
        self.channel.close()


def _run_child(write: Callable[[Channel], None], channel: Channel) -> None:
    status = 0
    try:
        gc.disable()  # no finalizer of the parent's objects may run here
        error = None
        try:
            write(channel)
        except BaseException as exc:
            error = exc
        channel.finish(error)
    except BaseException:
        status = 1
    finally:
        os._exit(status)


def _text(value: object) -> str | None:
    if value is None:
        return None
    return os.fsdecode(value) if isinstance(value, bytes) else str(value)


