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

# The shared page: each field is written by one side only, at its own offset,
# so that neither overwrites the other's (no read-modify-write of the header).
_STOP = struct.Struct("<B")  # offset 0, the parent's: 1 asks the child to stop
_STATE = struct.Struct("<B")  # offset 1, the child's: RUNNING, FINISHED or FAILED
_CODE = struct.Struct("<I")  # offset 4: the errno of the child's error, 0 if none
_COUNTER = struct.Struct("<Q")  # offsets 8 and 16: bytes written, files created
_LENGTH = struct.Struct("<I")  # offset 24: the length of the error's JSON, from 32
_DETAIL = 32
_PAGE = 1 << 16  # room for the error's JSON (a file name can be 4 KiB)
RUNNING, FINISHED, FAILED = 0, 1, 2


def available() -> bool:
    """True where a checkout may fork a writer: Linux (``fork`` elsewhere is either
    missing, or unsafe beside system frameworks, as on macOS)."""
    return sys.platform.startswith("linux") and hasattr(os, "fork")


class Channel:
    """The page parent and child share (see the module docstring)."""

    def __init__(self) -> None:
        self._page = mmap.mmap(-1, _PAGE)  # anonymous and shared: survives the fork

    # the parent's side
    def stop(self) -> None:
        """Ask the child to stop at its next check (every few hundred files)."""
        _STOP.pack_into(self._page, 0, 1)

    @property
    def written(self) -> int:
        """Bytes the child has written so far."""
        return int(_COUNTER.unpack_from(self._page, 8)[0])

    @property
    def failed(self) -> bool:
        """True once the child has stopped on an error."""
        return int(_STATE.unpack_from(self._page, 1)[0]) == FAILED

    # the child's side
    def stopped(self) -> bool:
        """True once the parent asked the child to stop."""
        return int(_STOP.unpack_from(self._page, 0)[0]) == 1

    def progress(self, written: int) -> None:
        """Bytes written so far (for the parent's progress bar)."""
        _COUNTER.pack_into(self._page, 8, written)

    def record_created(self, created: int) -> None:
        """How many files of its share, in order, the child created."""
        _COUNTER.pack_into(self._page, 16, created)

    def finish(self, error: BaseException | None) -> None:
        """Record the outcome (read by the parent once the child has exited)."""
        if error is not None:
            code = error.errno if isinstance(error, OSError) and error.errno else 0
            detail = {"type": type(error).__name__, "message": str(error)[:4096],
                      "strerror": getattr(error, "strerror", None),
                      "filename": _text(getattr(error, "filename", None))}
            body = json.dumps(detail).encode()
            if len(body) > _PAGE - _DETAIL:  # cannot be whole: say less
                body = json.dumps({"type": type(error).__name__, "message": "",
                                   "strerror": None, "filename": None}).encode()
            self._page[_DETAIL:_DETAIL + len(body)] = body
            _CODE.pack_into(self._page, 4, code)
            _LENGTH.pack_into(self._page, 24, len(body))
        _STATE.pack_into(self._page, 1, FINISHED if error is None else FAILED)

    def outcome(self) -> tuple[int, BaseException | None]:
        """(files the child created, its error or None), read after it exited."""
        state = int(_STATE.unpack_from(self._page, 1)[0])
        created = int(_COUNTER.unpack_from(self._page, 16)[0])
        if state == FINISHED:
            return created, None
        if state == RUNNING:  # it died without a word (killed, out of memory)
            return -1, KeelError("the process writing half of the files ended unexpectedly; "
                                 "nothing was changed",
                                 hint="check the system log (out of memory?), then try again")
        code = int(_CODE.unpack_from(self._page, 4)[0])
        length = int(_LENGTH.unpack_from(self._page, 24)[0])
        detail = json.loads(bytes(self._page[_DETAIL:_DETAIL + length]))
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


