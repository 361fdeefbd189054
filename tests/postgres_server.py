"""A throwaway PostgreSQL cluster for the test session, from the server binaries.

When ``KEEL_TEST_POSTGRES_URL`` is not set (a fresh machine running
``make test``), the suite starts its own cluster the way pytest-postgresql
does: ``initdb`` into a temporary folder, ``pg_ctl start`` on a free loopback
port, trust authentication, and ``pg_ctl stop`` at the end. PostgreSQL
refuses to run as root, so as root the cluster runs as the ``postgres``
user that Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PostgresServer:
    """A running throwaway cluster: its admin URL and how to stop it."""

    url: str
    folder: Path
    pg_ctl: str
    as_user: list[str]

    def stop(self) -> None:
        subprocess.run([*self.as_user, self.pg_ctl, "-D", str(self.folder / "data"), "-m",
                        "immediate", "stop"], capture_output=True, check=False, timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)


def server_binaries() -> str | None:
    """The folder holding ``initdb`` and ``pg_ctl``, newest version first; None if absent."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return os.path.dirname(os.path.realpath(found))
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                        key=lambda p: [int(x) for x in p.split("/")[4].split(".") if x.isdigit()])
    return os.path.dirname(candidates[-1]) if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start() -> PostgresServer:
    """Start a cluster; raises RuntimeError naming what is missing or what failed."""
    bindir = server_binaries()
    if bindir is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) on this machine; "
                           "install Debian's postgresql package, or set "
                           "KEEL_TEST_POSTGRES_URL")
    as_user: list[str] = []
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise RuntimeError("running as root and there is no 'postgres' user to run a "
                               "PostgreSQL cluster as") from exc
        as_user = ["runuser", "-u", "postgres", "--"]
    folder = Path(tempfile.mkdtemp(prefix="keel-pg-"))
    if owner is not None:
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    data, port = folder / "data", _free_port()
    steps = [
        [*as_user, f"{bindir}/initdb", "-D", str(data), "-U", "keel", "--auth=trust",
         "-E", "UTF8", "--no-sync"],
        [*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-l", str(folder / "log"), "-w",
         "-t", "60", "-o", f"-p {port} -h 127.0.0.1 -k {folder} -c fsync=off", "start"],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            raise RuntimeError(f"{os.path.basename(step[len(as_user)])} failed: "
                               f"{(done.stderr or done.stdout).strip()[-500:]}")
    return PostgresServer(f"postgresql+psycopg://keel@127.0.0.1:{port}/postgres", folder,
                          f"{bindir}/pg_ctl", as_user)
