"""Deployment changes: create, canary, A/B, shadow, promote, rollback.

Each change reads the deployment, computes the next spec with pure
functions, and writes it with a compare-and-set on the revision, committed
with its audit event (who, what, why, the figures). Servers poll the
revision and pick the change up without a restart.

Routes name concrete versions (``churn/3``): an alias (``churn@challenger``)
is resolved when the change is made and kept as the route's label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keel.clock import now_ms
from keel.entities import Deployment, DeploymentEvent, VersionStats
from keel.errors import InvalidInput, NotFound
from keel.names import check_identifier
from keel.serving.spec import CanaryLimits, DeploymentSpec
from keel.serving.split import Route
from keel.workspace import Workspace, resolve_workspace


def check_deployment_name(name: str) -> str:
    return check_identifier(name, "deployment name", example="prod")


@dataclass(frozen=True)
class Target:
    """A model reference resolved to a concrete registry version."""

    model: str       # churn
    version: str     # churn/3
    label: str       # champion, or "3"


def resolve_target(reference: str, ws: Workspace, default_model: str | None = None) -> Target:
    """``churn@champion``, ``churn/3``, ``models:/...``, or (given ``default_model``)
    a bare ``champion`` / ``3`` of the deployment's model."""
    from keel.models.registry import get_version
    from keel.models.uri import parse_model_ref

    text = reference.strip()
    if default_model and "@" not in text and "/" not in text and ":" not in text:
        text = f"{default_model}/{text}" if text.isdigit() else f"{default_model}@{text}"
    ref = parse_model_ref(text, allow_path=False)
    if ref.kind != "registry":
        raise InvalidInput(f"{reference!r} is not a registered model version",
                           hint="deploy registered versions: NAME@ALIAS or NAME/VERSION "
                                "(register one with `keel model register`)")
    version = get_version(ref, ws)
    return Target(version.name, version.ref, ref.alias or "")


def _user() -> str:
    from keel.tracking.provenance import current_user

    return current_user()


def create(name: str, model: str, ws: Workspace | None = None, sticky_header: str | None = None,
           sample: float = 1.0, reason: str = "", replace: bool = False) -> Deployment:
    """A new deployment sending all traffic to ``model`` (``churn@champion``).

    ``replace=True`` resets an existing deployment of that name to this one
    version instead (an audited change, like any other; servers follow it).
    """
    ws = resolve_workspace(ws)
    check_deployment_name(name)
    _check_sample(sample)
    target = resolve_target(model, ws)
    spec = DeploymentSpec(target.model, (Route(target.version, 100.0, "stable", target.label),),
                          sticky_header=sticky_header, sample=sample)
    if replace:
        try:
            deployment = ws.store.get_deployment(name)
        except NotFound:
            pass
        else:
            return _change(ws, deployment, spec, "reset", reason or f"reset to {target.version}")
    return ws.store.create_deployment(name, spec.to_dict(), _user(), reason)


def get(name: str, ws: Workspace | None = None) -> tuple[Deployment, DeploymentSpec]:
    ws = resolve_workspace(ws)
    deployment = ws.store.get_deployment(check_deployment_name(name))
    return deployment, DeploymentSpec.from_dict(deployment.spec)


def _change(ws: Workspace, deployment: Deployment, spec: DeploymentSpec, action: str,
            reason: str, figures: dict[str, Any] | None = None,
            user: str | None = None) -> Deployment:
    return ws.store.update_deployment(deployment.name, spec.to_dict(), deployment.revision,
                                      action, user or _user(), reason, figures)


def canary(name: str, model: str, percent: float, ws: Workspace | None = None,
           limits: CanaryLimits | None = None, reason: str = "") -> Deployment:
    """Send ``percent`` of traffic to ``model``; the rest stays on the stable version.

    The canary is watched by the servers against ``limits`` and rolled back
    automatically when it breaks them (see :mod:`keel.serving.guard`).
    """
    ws = resolve_workspace(ws)
    deployment, spec = get(name, ws)
    if not 0 < percent < 100:
        raise InvalidInput(f"--percent must be between 0 and 100 (exclusive), got {percent:g}",
                           hint="to send all traffic to a version, promote it")
    target = resolve_target(model, ws, spec.model)
    stable = spec.stable
    if target.version == stable.version:
        raise InvalidInput(f"{target.version} is already the stable version of {name!r}",
                           hint="canary a different version")
    routes = (Route(stable.version, 100.0 - percent, "stable", stable.label),
              Route(target.version, float(percent), "canary", target.label))
    new = spec.with_(routes=routes, limits=limits or spec.limits, canary_since=now_ms())
    return _change(ws, deployment, new, "canary", reason or
                   f"canary {target.version} at {percent:g}%")


def ab(name: str, split: str, ws: Workspace | None = None, sticky_header: str | None = None,
       reason: str = "") -> Deployment:
    """Split traffic between arms, ``champion=50,challenger=50`` (weights add up to 100).

    With ``sticky_header``, requests carrying the same header value always
    reach the same arm; without it they are placed at random by the split.
    """
    ws = resolve_workspace(ws)
    deployment, spec = get(name, ws)
    arms = parse_split(split)
    routes = []
    for reference, weight in arms:
        target = resolve_target(reference, ws, spec.model)
        routes.append(Route(target.version, weight, "ab", target.label))
    versions = [r.version for r in routes]
    if len(set(versions)) != len(versions):
        raise InvalidInput(f"--split names version {_first_duplicate(versions)} twice",
                           hint="give each version one weight")
    new = spec.with_(routes=tuple(routes), canary_since=None,
                     sticky_header=sticky_header or spec.sticky_header)
    return _change(ws, deployment, new, "ab", reason or f"A/B {split}")


def parse_split(text: str) -> list[tuple[str, float]]:
    """``champion=50,challenger=50`` -> ``[("champion", 50.0), ("challenger", 50.0)]``."""
    arms = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        reference, sep, weight = part.rpartition("=")
        if not sep or not reference.strip():
            raise InvalidInput(f"bad --split part {part!r}",
                               hint="write ARM=PERCENT pairs: champion=50,challenger=50")
        try:
            value = float(weight)
        except ValueError:
            raise InvalidInput(f"bad weight {weight!r} in --split",
                               hint="weights are percentages: champion=90,challenger=10") \
                from None
        if not 0 <= value <= 100:
            raise InvalidInput(f"weight {weight} in --split is not a percentage (0-100)")
        arms.append((reference.strip(), value))
    if len(arms) < 2:
        raise InvalidInput("--split needs at least two arms",
                           hint="write champion=50,challenger=50; for one version use promote")
    total = sum(w for _, w in arms)
    if abs(total - 100) > 1e-6:
        raise InvalidInput(f"--split weights add up to {total:g}, not 100",
                           hint="give percentages that add up to 100")
    return arms


def _first_duplicate(items: list[str]) -> str:
    seen: set[str] = set()
    for item in items:
        if item in seen:
            return item
        seen.add(item)
    return ""


def shadow(name: str, model: str | None, ws: Workspace | None = None, off: bool = False,
           reason: str = "") -> Deployment:
    """Mirror every request to ``model``: its answers are logged (role ``shadow``),
    never returned. ``off=True`` stops mirroring (all shadows, or just ``model``)."""
    ws = resolve_workspace(ws)
    deployment, spec = get(name, ws)
    if off:
        if model is None:
            kept: tuple[Route, ...] = ()
        else:
            gone = resolve_target(model, ws, spec.model).version
            kept = tuple(r for r in spec.shadows if r.version != gone)
        if kept == spec.shadows:
            raise InvalidInput(f"deployment {name!r} has no such shadow",
                               hint="see its shadows with `keel deploy status " + name + "`")
        return _change(ws, deployment, spec.with_(shadows=kept), "shadow-off",
                       reason or "shadow stopped")
    if model is None:
        raise InvalidInput("name the model to mirror traffic to: --model churn@challenger")
    target = resolve_target(model, ws, spec.model)
    if any(r.version == target.version for r in spec.shadows):
        raise InvalidInput(f"{target.version} is already a shadow of {name!r}")
    shadows = (*spec.shadows, Route(target.version, 0.0, "shadow", target.label))
    return _change(ws, deployment, spec.with_(shadows=shadows), "shadow",
                   reason or f"shadow {target.version}")


def promote(name: str, step: float | None = None, ws: Workspace | None = None,
            arm: str | None = None, reason: str = "") -> Deployment:
    """Move the canary forward: by ``step`` percentage points, or all the way (it
    becomes the stable version). In an A/B split, ``arm`` names the winner."""
    ws = resolve_workspace(ws)
    deployment, spec = get(name, ws)
    canary_route = spec.canary
    if arm is not None:
        target = resolve_target(arm, ws, spec.model)
        if target.version not in {r.version for r in spec.routes}:
            raise InvalidInput(f"{target.version} takes no traffic in {name!r}",
                               hint="promote one of its routes: keel deploy status " + name)
        winner = next(r for r in spec.routes if r.version == target.version)
        new = spec.with_(routes=(Route(winner.version, 100.0, "stable", winner.label),),
                         canary_since=None)
        return _change(ws, deployment, new, "promote", reason or f"promote {winner.version}")
    if canary_route is None:
        if any(r.role == "ab" for r in spec.routes):
            raise InvalidInput(f"deployment {name!r} runs an A/B split",
                               hint="name the winning arm: keel deploy promote "
                                    f"{name} --arm challenger")
        raise InvalidInput(f"deployment {name!r} has no canary to promote",
                           hint=f"start one: keel deploy canary {name} --model NAME@ALIAS "
                                "--percent 10")
    stable = spec.stable
    if step is not None:
        if not 0 < step <= 100:
            raise InvalidInput(f"--step must be between 0 and 100, got {step:g}")
        share = min(100.0, canary_route.weight + step)
    else:
        share = 100.0
    if share >= 100.0:
        new = spec.with_(routes=(Route(canary_route.version, 100.0, "stable",
                                       canary_route.label),), canary_since=None)
        return _change(ws, deployment, new, "promote",
                       reason or f"promote {canary_route.version} to 100%")
    routes = (Route(stable.version, 100.0 - share, "stable", stable.label),
              Route(canary_route.version, share, "canary", canary_route.label))
    # A step keeps judging the canary over the whole rollout: canary_since stays.
    return _change(ws, deployment, spec.with_(routes=routes), "promote",
                   reason or f"canary {canary_route.version} stepped to {share:g}%")


def rollback(name: str, ws: Workspace | None = None, reason: str = "",
             figures: dict[str, Any] | None = None, user: str | None = None,
             action: str = "rollback") -> Deployment:
    """All traffic back to the stable version: a canary is dropped; after a
    promotion or an A/B split, the version that last took all traffic alone
    takes it again."""
    ws = resolve_workspace(ws)
    deployment, spec = get(name, ws)
    return _change(ws, deployment, rolled_back(spec, deployment, ws), action,
                   reason or "rolled back by hand", figures, user)


def rolled_back(spec: DeploymentSpec, deployment: Deployment, ws: Workspace) -> DeploymentSpec:
    """The spec a rollback goes to (see :func:`rollback`)."""
    if spec.canary is not None:
        stable = spec.stable
        return spec.with_(routes=(Route(stable.version, 100.0, "stable", stable.label),),
                          canary_since=None)
    current = {r.version for r in spec.routes if r.weight > 0}
    for event in reversed(ws.store.deployment_history(deployment.name)):
        if event.revision >= deployment.revision:
            continue
        earlier = DeploymentSpec.from_dict(event.spec)
        taking = [r for r in earlier.routes if r.weight > 0]
        if len(taking) == 1 and {taking[0].version} != current:
            route = taking[0]
            return spec.with_(routes=(Route(route.version, 100.0, "stable", route.label),),
                              canary_since=None)
    raise InvalidInput(f"deployment {deployment.name!r} has nothing to roll back to",
                       hint="no earlier revision sent all traffic to another version")


def history(name: str, ws: Workspace | None = None) -> list[DeploymentEvent]:
    ws = resolve_workspace(ws)
    get(name, ws)
    return ws.store.deployment_history(name)


def live_figures(name: str, ws: Workspace | None = None, since_ms: int | None = None
                 ) -> list[VersionStats]:
    """Requests, errors and latency per version since ``since_ms`` (default: since
    the deployment last changed)."""
    ws = resolve_workspace(ws)
    deployment, spec = get(name, ws)
    since = since_ms if since_ms is not None else (spec.canary_since or deployment.updated_at)
    return ws.store.deployment_stats(name, since)


def _check_sample(sample: float) -> None:
    if not 0 <= sample <= 1:
        raise InvalidInput(f"--sample must be between 0 and 1, got {sample:g}",
                           hint="1 logs every prediction, 0.1 one in ten, 0 none")


def set_sample(name: str, sample: float, ws: Workspace | None = None) -> Deployment:
    """Log ``sample`` (0..1) of the predictions to the inference log."""
    ws = resolve_workspace(ws)
    _check_sample(sample)
    deployment, spec = get(name, ws)
    return _change(ws, deployment, spec.with_(sample=sample), "sample",
                   f"inference log sample {sample:g}")

