"""One pass of continuous training per deployment.

A deployment is in one of two states. **Watching**: read the monitoring
figures and the triggers; if one fires, retrain with the policy's pipeline on
the latest data, run the gates against the champion, and start a canary.
**Canary open** (the last chain ended in a canary): once the canary has
``min_requests`` requests (and ``observe`` has passed), promote it if its
error rate is within limits, else roll it back; if the server's guard already
rolled it back, record that. One pass moves one step, so a cron job, CI or
``keel automate daemon`` can drive it, and a crash between passes loses
nothing: the state is the audit trail itself.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.automation.policy import Policy, Trigger, policies
from keel.clock import now_ms
from keel.errors import InvalidInput, KeelError

if TYPE_CHECKING:
    from keel.entities import AutomationAction, ModelVersion
    from keel.workspace import Workspace

USER = "keel-automate"


@dataclass
class Step:
    """One action taken (or, with ``--dry-run``, that would be taken), and why."""

    deployment: str
    action: str
    outcome: str
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)
    links: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    chain: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Audit:
    """Writes the steps of one chain (or only collects them on a dry run)."""

    def __init__(self, policy: Policy, ws: Workspace, dry_run: bool,
                 chain: int | None = None) -> None:
        self.policy, self.ws, self.dry_run, self.chain = policy, ws, dry_run, chain
        self.steps: list[Step] = []

    def record(self, action: str, outcome: str, reason: str,
               figures: dict[str, Any] | None = None,
               links: dict[str, Any] | None = None, store: bool = True) -> Step:
        step = Step(self.policy.deployment, action, outcome, reason, figures or {},
                    links or {}, chain=self.chain)
        if store and not self.dry_run:
            saved = self.ws.store.add_automation_action(
                self.policy.deployment, action, outcome, reason, step.figures, step.links,
                self.chain)
            step.id, step.chain = saved.id, saved.chain
            self.chain = saved.chain
        self.steps.append(step)
        return step


def run_once(ws: Workspace | None = None, deployment: str | None = None,
             dry_run: bool = False, policy: Policy | None = None) -> list[Step]:
    """One pass over every declared policy (or ``deployment``'s, or ``policy``).
    A policy that fails is reported as a failed step; the others still run."""
    from keel.workspace import resolve_workspace

    ws = resolve_workspace(ws)
    steps: list[Step] = []
    for found in [policy] if policy else policies(ws, deployment):
        try:
            steps += advance(found, ws, dry_run)
        except KeelError as exc:
            steps.append(Step(found.deployment, "check", "failed", exc.message,
                              {"hint": exc.hint} if exc.hint else {}))
    return steps


def advance(policy: Policy, ws: Workspace, dry_run: bool = False) -> list[Step]:
    """Move one deployment one step along its policy."""
    from keel.serving import rollout

    rollout.get(policy.deployment, ws)  # a clear error if the deployment is missing
    open_canary = _open_canary(policy, ws)
    if open_canary is not None:
        return _judge(policy, open_canary, ws, dry_run)
    return _watch(policy, ws, dry_run)


def _open_canary(policy: Policy, ws: Workspace) -> AutomationAction | None:
    """The last chain's canary, if nothing has ended that chain yet."""
    actions = ws.store.list_automation_actions(policy.deployment, limit=50)
    if not actions:
        return None
    last = actions[-1]
    return last if last.action == "canary" and last.outcome == "ok" else None


def _judge(policy: Policy, canary: AutomationAction, ws: Workspace,
           dry_run: bool) -> list[Step]:
    from keel.serving import rollout

    audit = _Audit(policy, ws, dry_run, canary.chain)
    candidate = canary.links["model_version"]
    deployment, spec = rollout.get(policy.deployment, ws)
    route = spec.canary
    if route is None or route.version != candidate:
        # Ended outside this loop: the server's guard rolled it back, or a person acted.
        event = ws.store.deployment_history(policy.deployment)[-1]
        promoted = spec.stable.version == candidate
        audit.record("promote" if promoted else "rollback", "observed",
                     f"the canary of {candidate} was ended outside automation: "
                     f"{event.action} by {event.user}: {event.reason}", event.figures,
                     {"model_version": candidate, "deployment_revision": deployment.revision})
        return audit.steps
    stats = rollout.live_figures(policy.deployment, ws, since_ms=spec.canary_since)
    mine = [s for s in stats if s.version == candidate and s.role == "canary"]
    requests = sum(s.requests for s in mine)
    errors = sum(s.errors for s in mine)
    age = (now_ms() - (spec.canary_since or deployment.updated_at)) / 1000
    figures = {"canary_requests": requests, "canary_errors": errors,
               "canary_error_rate": errors / requests if requests else None,
               "canary_age_seconds": round(age, 1),
               "min_requests": policy.canary.min_requests,
               "max_error_rate": policy.canary.max_error_rate}
    if requests < policy.canary.min_requests or age < policy.observe_seconds:
        audit.record("wait", "waiting", f"canary {candidate} has {requests} of "
                     f"{policy.canary.min_requests} requests after {age:.0f} s (observe "
                     f"{policy.observe_seconds:g} s): judged later", figures, store=False)
        return audit.steps
    rate = errors / requests
    links = {"model_version": candidate}
    if rate > policy.canary.max_error_rate:
        reason = (f"canary {candidate} failed {rate:.2%} of {requests} requests "
                  f"(limit {policy.canary.max_error_rate:.2%})")
        if not dry_run:
            changed = rollout.rollback(policy.deployment, ws, reason=reason, figures=figures,
                                       user=USER)
            links["deployment_revision"] = changed.revision
        audit.record("rollback", "ok" if not dry_run else "dry-run", reason, figures, links)
        return audit.steps
    reason = (f"canary {candidate} healthy: {requests} requests, error rate {rate:.2%} "
              f"(limit {policy.canary.max_error_rate:.2%})")
    if not dry_run:
        import keel.models as km

        changed = rollout.promote(policy.deployment, ws=ws,
                                  reason=f"automation chain {canary.chain}: {reason}")
        km.promote(candidate, policy.alias, reason=f"automation chain {canary.chain}: "
                   f"{reason}", policy=km.GatePolicy(check_signature=False), ws=ws)
        links.update(deployment_revision=changed.revision, alias=policy.alias)
    audit.record("promote", "ok" if not dry_run else "dry-run", reason, figures, links)
    return audit.steps


def _watch(policy: Policy, ws: Workspace, dry_run: bool) -> list[Step]:
    audit = _Audit(policy, ws, dry_run)
    figures, record, note = _monitoring_figures(policy, ws, dry_run)
    fired = [(t, why) for t in policy.triggers
             if (why := _fires(t, figures, policy, ws)) is not None]
    shown = {k: v for k, v in figures.items() if not k.startswith(("drift.", "p_value."))}
    if not fired:
        audit.record("check", "quiet", "no trigger fired" + (f" ({note})" if note else ""),
                     shown, store=False)
        return audit.steps
    reason = "; ".join(why for _, why in fired)
    audit.record("trigger", "ok" if not dry_run else "dry-run", reason,
                 {**shown, "fired": [t.text for t, _ in fired]},
                 {"monitor_record": record})
    data = _latest_data(policy, ws)
    if dry_run:
        gates = ", ".join(policy.gates) or "the declared gates"
        on = f" on {data}" if data else ""
        audit.record("retrain", "dry-run", f"would run {policy.pipeline_name}{on}, gate it "
                     f"({gates}) against {policy.model}@{policy.alias}, then canary it at "
                     f"{policy.canary.percent:g}%", links={"data": data})
        return audit.steps
    candidate = _retrain(policy, data, audit, ws)
    if candidate is None or not _gate(policy, candidate, audit, ws):
        return audit.steps
    _canary(policy, candidate, audit, ws)
    return audit.steps


def _monitoring_figures(policy: Policy, ws: Workspace, dry_run: bool
                        ) -> tuple[dict[str, float], int | None, str]:
    """The figures rule triggers read (a stored monitoring pass); none if the
    window is empty: data and schedule triggers still work."""
    from keel.monitoring import monitor

    if not any(t.rule for t in policy.triggers):
        return {}, None, ""
    try:
        result = monitor.run(deployment=policy.deployment, window=policy.window,
                             reference=policy.reference, save=not dry_run, ws=ws)
    except KeelError as exc:
        return {}, None, f"monitoring: {exc.message}"
    return result.figures, result.record.id if result.record else None, ""


def _fires(trigger: Trigger, figures: dict[str, float], policy: Policy,
           ws: Workspace) -> str | None:
    """Why ``trigger`` fires now, or None."""
    if trigger.rule is not None:
        value = trigger.rule.value(figures)
        return f"{trigger.rule.figure} = {value:.4g} ({trigger.text})" \
            if trigger.rule.fires(figures) and value is not None else None
    if trigger.dataset is not None:
        import keel.data

        versions = keel.data.log(trigger.dataset, ws=ws)
        if not versions:
            return None
        latest = versions[-1].ref
        trained = _trained_on(policy, ws)
        return f"new version {latest} of {trigger.dataset} (the live model was trained on " \
               f"{', '.join(trained) or 'nothing recorded'})" if latest not in trained else None
    if trigger.every_seconds is not None:
        retrains = [a for a in ws.store.list_automation_actions(policy.deployment)
                    if a.action == "retrain"]
        if not retrains:
            return f"schedule: no retrain yet ({trigger.text})"
        age = (now_ms() - retrains[-1].time) / 1000
        return f"schedule: last retrain {age:.0f} s ago ({trigger.text})" \
            if age >= trigger.every_seconds else None
    return None


def _trained_on(policy: Policy, ws: Workspace) -> set[str]:
    """Dataset versions the live stable version was trained on (its lineage)."""
    from keel.models.lineage import lineage
    from keel.serving import rollout

    _, spec = rollout.get(policy.deployment, ws)
    try:
        found = lineage(spec.stable.version, ws=ws)
    except KeelError:
        return set()
    return {d["ref"] for d in found.get("datasets", []) if d.get("role") == "input"}


def _latest_data(policy: Policy, ws: Workspace) -> str | None:
    if not policy.data:
        return None
    import keel.data

    return keel.data.get(policy.data, ws=ws).ref


def _retrain(policy: Policy, data: str | None, audit: _Audit, ws: Workspace
             ) -> ModelVersion | None:
    """Run the training pipeline; the version it registered, or None (audited)."""
    from keel.pipelines.pipeline import load_pipeline
    from keel.pipelines.task import CACHED, FAILED

    started = now_ms()
    links: dict[str, Any] = {"pipeline": policy.pipeline_name, "data": data}
    clock = time.perf_counter()
    try:
        if isinstance(policy.pipeline, str):
            path, _, name = policy.pipeline.partition(":")
            where = Path(path) if Path(path).is_absolute() else ws.root / path
            pipeline = load_pipeline(f"{where}:{name}" if name else str(where))
        else:  # declared in Python: the @keel.pipeline object itself
            pipeline = policy.pipeline
        params: dict[str, Any] = {"data": data} if data and "data" in inspect.signature(
            pipeline.fn).parameters else {}
        result = pipeline.run(ws=ws, **params)
    except Exception as exc:  # a user's pipeline can fail any way; the loop must go on
        audit.record("retrain", "failed", f"{policy.pipeline_name} failed: "
                     f"{type(exc).__name__}: {exc}", {"seconds": time.perf_counter() - clock},
                     links)
        return None
    links.update(pipeline_run=result.run_id, steps=result.to_list())
    figures = {"seconds": round(time.perf_counter() - clock, 2)}
    if not result.ok:
        failed = next((s for s in result.steps if s.status == FAILED), result.steps[-1])
        audit.record("retrain", "failed", f"step {failed.step} of {policy.pipeline_name} "
                     f"failed: {failed.error}", figures, links)
        return None
    candidate = _candidate(policy, result, started, ws)
    if candidate is None:
        audit.record("retrain", "failed", f"{policy.pipeline_name} registered no new version of "
                     f"{policy.model!r}", figures, links)
        return None
    links["model_version"] = candidate.ref
    on = f" on {data}" if data else ""
    if result.steps and all(s.status == CACHED for s in result.steps):
        # Same code, data and params as a run before: its version stands; saying
        # "trained" would claim work that was not done.
        what = f"every step of {policy.pipeline_name} was cached{on}: reusing {candidate.ref}"
    else:
        what = f"{policy.pipeline_name} trained {candidate.ref}{on}"
    audit.record("retrain", "ok", what, figures, links)
    return candidate


def _candidate(policy: Policy, result: Any, started: int, ws: Workspace
               ) -> ModelVersion | None:
    """The version the pipeline's last step names (``model_version``/``ref`` in
    its output), else the newest version of the model registered since it started."""
    from keel.models.registry import get_version

    last = result.steps[-1].step if result.steps else None
    try:
        output = result.output(last, ws) if last else None
    except KeelError:
        output = None
    named = output.get("model_version") or output.get("ref") \
        if isinstance(output, dict) else getattr(output, "ref", None)
    if isinstance(named, str) and named.startswith(policy.model + "/"):
        return get_version(named, ws)
    fresh = [v for v in ws.store.list_model_versions(policy.model) if v.created_at >= started]
    return fresh[-1] if fresh else None


def _gate(policy: Policy, candidate: ModelVersion, audit: _Audit, ws: Workspace) -> bool:
    import keel.models as km

    gates = km.GatePolicy.for_alias(policy.model, policy.alias,
                                    require=list(policy.gates) or None,
                                    holdout=policy.holdout,
                                    max_regression=policy.max_regression, ws=ws)
    report = km.check(candidate.ref, policy.alias, gates, ws=ws)
    outcome = "ok" if report.passed else "refused"
    failed = "; ".join(f"{r.gate}: {r.detail}" for r in report.failed)
    audit.record("gate", outcome, f"{candidate.ref} passed every gate against "
                 f"{policy.model}@{policy.alias}" if report.passed
                 else f"{candidate.ref} refused: {failed}", report.to_dict(),
                 {"model_version": candidate.ref})
    return report.passed


def _canary(policy: Policy, candidate: ModelVersion, audit: _Audit, ws: Workspace) -> None:
    from keel.serving import rollout
    from keel.serving.spec import CanaryLimits

    limits = CanaryLimits(max_error_rate=policy.canary.max_error_rate,
                          min_requests=policy.canary.min_requests)
    chain = audit.chain
    changed = rollout.canary(policy.deployment, candidate.ref, policy.canary.percent, ws,
                             limits=limits, reason=f"automation chain {chain}")
    audit.record("canary", "ok", f"{candidate.ref} takes {policy.canary.percent:g}% of "
                 f"{policy.deployment}'s traffic until it has {policy.canary.min_requests} "
                 "requests", {"percent": policy.canary.percent},
                 {"model_version": candidate.ref, "deployment_revision": changed.revision})


def chains(deployment: str, ws: Workspace) -> list[list[AutomationAction]]:
    """Every chain of actions for ``deployment``, oldest first."""
    grouped: dict[int, list[AutomationAction]] = {}
    for action in ws.store.list_automation_actions(deployment, limit=10_000):
        grouped.setdefault(action.chain or action.id, []).append(action)
    return list(grouped.values())


def check_policy(policy: Policy) -> None:
    if not policy.triggers:
        raise InvalidInput(f"[automate.{policy.deployment}] has no triggers")
