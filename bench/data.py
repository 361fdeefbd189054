"""Data-versioning benchmark: keel against DVC 3.67.1, same files, one run.

    python bench/data.py [--files 20000] [--big-mib 1024]

1  add of 20,000 x 4 KiB files (100 folders x 200)
2  add of one 1 GiB file
3  status with nothing changed (median of 5, opening the workspace/repo each time)
4  status after touching one file (mtime only) and after changing one file's bytes
5  hashing throughput of keel's file hashing vs BLAKE3 on the same bytes in memory

Operation times are measured in-process after import, for both tools; whole
CLI commands (with interpreter start-up) are reported alongside. DVC runs in
bench/.venv-dvc (created on first use). Targets: add >= 5x DVC, no-change
status >= 10x DVC, 1 GiB hashing >= 70% of BLAKE3's in-memory throughput.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import peer_python, ratio, run_peer

KEEL = Path(sys.executable).parent / "keel"


def make_small_files(root: Path, count: int) -> None:
    per_folder = 200
    for n in range(count):
        folder = root / f"d{n // per_folder:03d}"
        if n % per_folder == 0:
            folder.mkdir(parents=True)
        (folder / f"f{n % per_folder:03d}.bin").write_bytes(os.urandom(4096))


def make_big_file(path: Path, mib: int) -> None:
    with open(path, "wb") as handle:
        for _ in range(mib):
            handle.write(os.urandom(1 << 20))


def keel_side(work: Path, small: Path, big: Path) -> dict[str, float]:
    """keel's operation times in this process, in a fresh workspace at ``work``."""
    import keel.data
    from keel.workspace import Workspace, init_workspace

    os.chdir(work)
    init_workspace(work)
    ws = Workspace.open(work)  # opened (and migrated) before timing, as DVC's init is
    result: dict[str, float] = {}
    started = time.perf_counter()
    keel.data.add(small, "small", ws=ws)
    result["add_small"] = time.perf_counter() - started
    started = time.perf_counter()
    keel.data.add(big, "big", ws=ws)
    result["add_big"] = time.perf_counter() - started

    def status() -> float:
        t0 = time.perf_counter()
        opened = Workspace.open(work)
        keel.data.status("small", ws=opened)
        opened.close()
        return time.perf_counter() - t0

    result["status_clean"] = statistics.median(status() for _ in range(5))
    victim = sorted(sorted(small.iterdir())[0].iterdir())[0]
    os.utime(victim)
    result["status_touched"] = statistics.median(status() for _ in range(3))
    with open(victim, "ab") as handle:
        handle.write(b"x")
    result["status_modified"] = statistics.median(status() for _ in range(3))
    return result


def cli_times(keel_dir: Path, dvc_dir: Path) -> dict[str, float]:
    """Wall time of one no-change status command each, interpreter start-up included."""
    def timed(cmd: list[str], cwd: Path) -> float:
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
        return time.perf_counter() - t0

    dvc = [str(peer_python("dvc")), "-m", "dvc"]
    return {"keel_status_cli": statistics.median(timed([str(KEEL), "data", "status", "small"],
                                                       keel_dir) for _ in range(3)),
            "dvc_status_cli": statistics.median(timed([*dvc, "status"], dvc_dir)
                                                for _ in range(3))}


def hashing(big: Path) -> tuple[float, float]:
    """GiB/s of keel's hash_file on ``big`` and of BLAKE3 on the same bytes in memory."""
    from blake3 import blake3

    from keel.blobs.digest import hash_file

    data = big.read_bytes()  # also warms the page cache for hash_file
    gib = len(data) / (1 << 30)
    t0 = time.perf_counter()
    blake3(data, max_threads=blake3.AUTO).digest()
    floor = gib / (time.perf_counter() - t0)
    del data
    t0 = time.perf_counter()
    hash_file(big)
    return gib / (time.perf_counter() - t0), floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--big-mib", type=int, default=1024)
    args = parser.parse_args()
    console = Console()
    peer_python("dvc")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        console.print(f"generating {args.files:,} small files and a {args.big_mib} MiB file...")
        make_small_files(base / "source" / "small", args.files)
        make_big_file(base / "big.bin", args.big_mib)
        subprocess.run(["sync"], check=False)
        keel_dir, dvc_dir = base / "keel", base / "dvc"
        for target in (keel_dir, dvc_dir):
            shutil.copytree(base / "source", target)
            os.link(base / "big.bin", target / "big.bin")
        subprocess.run(["sync"], check=False)
        console.print("hashing throughput...")
        ours_hash, floor = hashing(base / "big.bin")
        console.print("keel...")
        ours = keel_side(keel_dir, keel_dir / "small", keel_dir / "big.bin")
        console.print("DVC...")
        theirs = run_peer("dvc", "dvc_side.py", str(dvc_dir), "small", "big.bin")
        cli = cli_times(keel_dir, dvc_dir)
    table = Table(title="keel vs DVC 3.67.1, seconds (in-process); ratio = DVC / keel")
    for column in ("workload", "keel", "DVC", "ratio", "target", "result"):
        table.add_column(column, justify="left" if column == "workload" else "right")
    rows = [("add_small", f"add {args.files:,} x 4 KiB files", 5),
            ("add_big", f"add one {args.big_mib} MiB file", 5),
            ("status_clean", "status, nothing changed", 10),
            ("status_touched", "status, one file touched", 0),
            ("status_modified", "status, one file changed", 0)]
    for key, label, target in rows:
        r = ratio(theirs[key], ours[key])
        verdict = "-" if not target else "[green]pass" if r >= target else "[red]miss"
        table.add_row(label, f"{ours[key]:.3f}", f"{theirs[key]:.3f}", f"{r:.1f}x",
                      f">= {target}x" if target else "-", verdict)
    table.add_row("status CLI, nothing changed (with start-up)", f"{cli['keel_status_cli']:.3f}",
                  f"{cli['dvc_status_cli']:.3f}",
                  f"{ratio(cli['dvc_status_cli'], cli['keel_status_cli']):.1f}x", "-", "-")
    share = ours_hash / floor
    table.add_row(f"hash {args.big_mib} MiB: keel GiB/s vs BLAKE3 in memory",
                  f"{ours_hash:.2f}", f"floor {floor:.2f}", f"{share:.0%}", ">= 70%",
                  "[green]pass" if share >= 0.7 else "[red]miss")
    console.print(table)


if __name__ == "__main__":
    main()
