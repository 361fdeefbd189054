"""DVC's half of bench/data.py; runs in bench/.venv-dvc, prints JSON timings.

Usage: python dvc_side.py REPO_DIR SMALL_DIR BIG_FILE
Times the operations in-process after import (``Repo.add``, ``Repo.status``),
opening the repository inside each timed status as the CLI does.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time


def main() -> None:
    repo_dir, small, big = sys.argv[1], sys.argv[2], sys.argv[3]
    os.chdir(repo_dir)
    from dvc.repo import Repo

    Repo.init(no_scm=True)
    result: dict[str, float] = {}
    repo = Repo(".")
    started = time.perf_counter()
    repo.add(small)
    result["add_small"] = time.perf_counter() - started
    started = time.perf_counter()
    repo.add(big)
    result["add_big"] = time.perf_counter() - started

    def status() -> float:
        t0 = time.perf_counter()
        Repo(".").status()
        return time.perf_counter() - t0

    result["status_clean"] = statistics.median(status() for _ in range(5))
    first = os.path.join(small, sorted(os.listdir(small))[0])
    victim = os.path.join(first, sorted(os.listdir(first))[0])
    os.utime(victim)
    result["status_touched"] = statistics.median(status() for _ in range(3))
    with open(victim, "ab") as handle:
        handle.write(b"x")
    result["status_modified"] = statistics.median(status() for _ in range(3))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
