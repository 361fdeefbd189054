"""Several processes logging into one workspace at once all get stored."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import keel

WORKER = textwrap.dedent("""
    import sys, keel
    with keel.start_run(experiment="parallel", name=f"worker-{sys.argv[1]}") as run:
        for i in range(5_000):
            run.log_metric("loss", i * 0.001, step=i)
            if i % 500 == 0:
                run.set_tag("progress", str(i))
    print(run.id)
""")


def test_four_processes_log_20000_points_without_lock_errors(backend: str) -> None:
    keel.create_experiment("parallel")  # the workspace exists before the workers start
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(n)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for n in range(4)]
    outputs = [w.communicate(timeout=300) for w in workers]  # also closes their pipes
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
        assert "locked" not in err.lower()
    run_ids = [out.strip() for out, _ in outputs]
    total = sum(len(keel.get_metric_history(r, "loss")) for r in run_ids)
    assert total == 20_000
    assert {keel.get_run(r).status for r in run_ids} == {"FINISHED"}
