"""Runs belong to the thread, task or workspace that started them, never to another's."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import keel
from keel.workspace import Workspace, init_workspace


def test_two_threads_log_their_own_runs_at_once(backend: str) -> None:
    keel.create_experiment("threads")
    started = threading.Barrier(2)
    ids: dict[str, str] = {}

    def work(name: str) -> None:
        with keel.start_run(experiment="threads", name=name) as run:
            ids[name] = run.id
            started.wait(10)  # both runs are active at once from here on
            for step in range(200):
                keel.log_metric("value", float(len(name) * 1000 + step), step=step)
            keel.set_tag("who", name)
            started.wait(10)  # neither ends before the other has logged everything

    threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "bb")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for name, run_id in ids.items():
        stored = keel.get_run(run_id)
        assert stored.parent_id is None  # not a child of the other thread's run
        assert stored.tags["who"] == name
        values = [p.value for p in keel.get_metric_history(run_id, "value")]
        assert values == [float(len(name) * 1000 + s) for s in range(200)]
    assert keel.active_run() is None  # the main thread never had an active run


def test_two_asyncio_tasks_log_their_own_runs_at_once(backend: str) -> None:
    async def work(name: str, both_started: asyncio.Event, count: list[int]) -> str:
        with keel.start_run(experiment="tasks", name=name) as run:
            count.append(1)
            if len(count) == 2:
                both_started.set()
            await both_started.wait()
            for step in range(50):
                keel.log_metric("who", 1.0 if name == "one" else 2.0, step=step)
                await asyncio.sleep(0)  # let the other task log in between
            assert keel.active_run() is run
            return run.id

    async def main() -> list[str]:
        event, count = asyncio.Event(), []
        return list(await asyncio.gather(work("one", event, count), work("two", event, count)))

    first, second = asyncio.run(main())
    assert {p.value for p in keel.get_metric_history(first, "who")} == {1.0}
    assert {p.value for p in keel.get_metric_history(second, "who")} == {2.0}
    assert keel.get_run(first).parent_id is None and keel.get_run(second).parent_id is None


def test_a_child_run_is_a_child_only_where_the_caller_nested_it(backend: str) -> None:
    with keel.start_run(experiment="sweep") as parent:
        with keel.start_run() as child:
            assert keel.active_run() is child
        found: list[str | None] = []
        # A thread started inside the parent's block has its own context: no parent.
        thread = threading.Thread(target=lambda: found.append(_top_level_run()))
        thread.start()
        thread.join(30)
        assert keel.active_run() is parent
    assert keel.get_run(child.id).parent_id == parent.id
    assert keel.get_run(child.id).experiment == "sweep"
    assert found[0] is not None and keel.get_run(found[0]).parent_id is None


def _top_level_run() -> str:
    with keel.start_run(experiment="other") as run:
        return run.id


def test_start_run_with_an_explicit_workspace_records_there(
        backend: str, other_workspace: Workspace) -> None:
    other = other_workspace
    with keel.start_run(experiment="here") as outer, \
            keel.start_run(experiment="there", ws=other) as inner:
        keel.log_metric("x", 1.0)  # goes to the innermost active run: inner
    assert inner.parent_id is None  # a run of another workspace is no parent
    assert keel.get_run(inner.id, ws=other).metrics == {"x": 1.0}
    assert [r.id for r in keel.search_runs(as_list=True)] == [outer.id]
    assert [r.id for r in keel.search_runs(as_list=True, ws=other)] == [inner.id]
    with keel.use_workspace(other):
        assert keel.get_run(inner.id).experiment == "there"


def test_a_workspace_block_sends_runs_and_reads_there(backend: str, tmp_path: Path) -> None:
    root = init_workspace(tmp_path.parent / f"{tmp_path.name}-b")
    with Workspace.open(root, store=str(root / ".keel" / "keel.db")) as other:
        with keel.start_run(experiment="in-b") as run:
            run.log_metric("m", 2.0)
        assert keel.get_run(run.id).experiment == "in-b"
        assert run.workspace is other
    # Nothing was recorded in the current folder's workspace.
    assert keel.search_runs(as_list=True) == []
