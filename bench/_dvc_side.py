"""DVC's in-process half of bench/data.py; run with bench/.venv-dvc's python.

    python _dvc_side.py WORK REPS

``WORK`` already holds ``data/`` and ``big.bin``. The import of DVC and the
opening of the repository happen before any timing, as keel's side imports
keel and opens its workspace first, so what is timed is ``Repo.add``,
``Repo.status`` and ``Repo.checkout`` themselves. Prints the timings as one line of JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _dvc_protocol as protocol


def main() -> None:
    work, reps = Path(sys.argv[1]).resolve(), int(sys.argv[2])
    os.environ["DVC_NO_ANALYTICS"] = "1"  # no telemetry process, nothing off the machine
    os.chdir(work)
    started = time.perf_counter()
    from dvc.repo import Repo
    import_time = time.perf_counter() - started

    Repo.init(str(work), no_scm=True).close()
    repo = Repo(str(work))

    def status() -> bool:
        return bool(repo.status())  # {} when nothing changed

    def reopen_status() -> bool:
        # What each CLI call pays besides start-up: reading config, finding the repo.
        fresh = Repo(str(work))
        try:
            return bool(fresh.status())
        finally:
            fresh.close()

    result = protocol.run(work, lambda path, _name: repo.add(path), status, reps,
                          reopen_status, lambda: repo.checkout())
    repo.close()
    result["import"] = import_time
    print(json.dumps(result))


if __name__ == "__main__":
    main()
