"""A step's cache key: the digest of its code, params, input digests and environment.

The parts are kept with the cached record, so that when a key is not found
``keel pipeline status`` can say which part moved since the last time the
step ran: its code, a param (and how), an input (which), or the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keel.pipelines.fingerprint import canonical, code_digest, digest_text, env_digest


@dataclass(frozen=True)
class StepKey:
    """The key and its parts."""

    key: str
    components: dict[str, Any]


def step_key(node: Any, inputs: dict[str, list[str]]) -> StepKey:
    """The key of ``node`` given its inputs' digests (parameter name -> digests)."""
    components = {
        "code": code_digest(node.step.keel_step_function),
        "params": node.params,
        "inputs": {name: sorted(digests) for name, digests in sorted(inputs.items())},
        "env": env_digest(node.step.env),
        "files": list(node.step.outputs),
    }
    return StepKey(digest_text(canonical(components)), components)


def explain(now: dict[str, Any], before: dict[str, Any] | None,
            input_steps: dict[str, str]) -> str:
    """Why a step is stale: what differs between the key parts ``now`` and ``before``.
    ``input_steps`` names where each input comes from (a step, or a dataset)."""
    if before is None:
        return "never run"
    reasons = []
    if now["code"] != before.get("code"):
        reasons.append("code changed")
    old_params = before.get("params", {})
    changed = [f"{k} {old_params.get(k)!r} -> {v!r}" for k, v in now["params"].items()
               if old_params.get(k) != v]
    changed += [f"{k} removed" for k in old_params if k not in now["params"]]
    if changed:
        reasons.append("params changed: " + ", ".join(changed))
    old_inputs = before.get("inputs", {})
    for name, digests in now["inputs"].items():
        if old_inputs.get(name) != digests:
            reasons.append(f"input {name!r} changed ({input_steps.get(name, name)})")
    if now["env"] != before.get("env"):
        moved = [f"{k} {before.get('env', {}).get(k)} -> {v}" for k, v in now["env"].items()
                 if before.get("env", {}).get(k) != v]
        reasons.append("environment changed: " + (", ".join(moved) or "declared packages"))
    if now.get("files") != before.get("files"):
        reasons.append("declared output files changed")
    return "; ".join(reasons) or "forced"
