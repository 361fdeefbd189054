"""``keel gc``: purge what was deleted long enough ago, then sweep unreferenced blobs.

1. Take the workspace's write lease exclusively (``Workspace.writing``): no
   ``add``, ``log_artifact``, ``pull`` or registration is between writing a
   blob and recording it while gc decides. gc waits for writers in progress.
2. Purge runs, model versions and dataset versions deleted more than
   ``older_than`` ago (runs a model version was registered from are kept: the
   version's lineage names them). A purged model version leaves a ``purge``
   event in the model's history.
3. Compute the live set (``gc.live``) and sweep the blob store
   (``blobs.sweep``), keeping anything younger than ``grace``; with
   ``remote``, sweep that remote too, against the dataset records it holds.

With ``dry_run`` nothing is purged or removed; the report says what would be,
computed exactly as a real run would (as if the purge had happened).
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from keel.blobs.sweep import SweepPlan, execute, plan
from keel.clock import now_ms
from keel.errors import Conflict
from keel.gc.live import live_digests, remote_live_digests
from keel.tracking.provenance import current_user
from keel.workspace import Workspace

RETENTION_S = 30 * 86400  # keep deleted runs and versions 30 days, as `mlflow gc` users expect
GRACE_S = 3600            # and blobs written in the last hour, whatever refers to them
LEASE_WAIT_S = 60.0


@dataclass
class GcReport:
    """What one gc did (or, with ``dry_run``, would do)."""

    dry_run: bool
    purged_runs: list[str] = field(default_factory=list)
    kept_registered_runs: list[str] = field(default_factory=list)
    purged_versions: list[str] = field(default_factory=list)
    purged_datasets: list[str] = field(default_factory=list)
    live: dict[str, int] = field(default_factory=dict)
    sweeps: list[SweepPlan] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.sweeps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run, "purged_runs": self.purged_runs,
            "kept_registered_runs": self.kept_registered_runs,
            "purged_model_versions": self.purged_versions,
            "purged_dataset_versions": self.purged_datasets, "live": self.live,
            "bytes": self.bytes,
            "stores": [{"store": s.store, "bytes": s.bytes, "dead_blobs": s.dead_blobs,
                        "loose_blobs": s.count("blob"), "packs_removed": s.count("pack"),
                        "packs_rewritten": s.count("repack"),
                        "temporaries": s.count("temporary"), "kept_young": s.kept_young,
                        "unreadable_packs": s.unreadable_packs,
                        "items": [{"kind": i.kind, "path": i.path, "bytes": i.bytes,
                                   "blobs": i.blobs} for i in s.items]}
                       for s in self.sweeps]}


def collect(ws: Workspace, older_than_s: float = RETENTION_S, grace_s: float = GRACE_S,
            dry_run: bool = False, remote: str | None = None,
            lease_wait_s: float = LEASE_WAIT_S) -> GcReport:
    """Run garbage collection on ``ws`` (see the module docstring)."""
    report = GcReport(dry_run)
    with _exclusive_lease(ws, lease_wait_s):
        cutoff = now_ms() - int(older_than_s * 1000)
        runs = ws.store.deleted_runs(cutoff)
        registered = ws.store.registered_runs(runs)
        report.purged_runs = [r for r in runs if r not in registered]
        report.kept_registered_runs = sorted(registered)
        versions = ws.store.deleted_model_versions(cutoff)
        report.purged_versions = [f"{name}/{version}" for name, version in versions]
        datasets = ws.store.deleted_dataset_versions(cutoff)
        report.purged_datasets = [v.ref for v in datasets]
        if not dry_run:
            ws.store.purge_runs(report.purged_runs)
            for name, version in versions:
                ws.store.purge_model_version(name, version, current_user(),
                                             "keel gc: deleted more than the retention ago")
            ws.store.purge_dataset_versions([v.id for v in datasets])
        live = live_digests(ws, without_runs=report.purged_runs, without_versions=versions,
                            without_datasets=[v.id for v in datasets])
        report.live = dict(live.counts)
        local = plan(ws.blobs, live, grace_s)
        report.sweeps.append(local)
        if remote is not None:
            remote_blobs, remote_live = remote_live_digests(ws, remote)
            report.sweeps.append(plan(remote_blobs, remote_live, grace_s))
        if not dry_run:
            execute(ws.blobs, local)
            if remote is not None:
                execute(remote_blobs, report.sweeps[-1])
    return report


@contextmanager
def _exclusive_lease(ws: Workspace, wait_s: float) -> Iterator[None]:
    """The write lease, exclusively: wait up to ``wait_s`` for writers to finish."""
    with open(ws.lease_path, "a") as handle:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Conflict(f"a write to this workspace is still in progress after "
                                   f"{wait_s:g} s (a data add, pull or log_artifact)",
                                   hint="run keel gc again when it has finished") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
