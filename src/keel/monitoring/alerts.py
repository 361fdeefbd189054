"""Alerts: a rule that fires writes an alert record and, if a webhook is set,
POSTs it as JSON. A webhook that fails or times out is recorded as such; the
caller's loop carries on (an alert is never lost because its receiver is down)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING

from keel.monitoring.rules import Rule

if TYPE_CHECKING:
    from keel.entities import Alert
    from keel.workspace import Workspace


def raise_alerts(subject: str, record_id: int | None, rules: list[Rule],
                 figures: dict[str, float], webhook: str | None, ws: Workspace,
                 timeout: float = 5.0) -> list[Alert]:
    """An alert for every rule that fires on ``figures``."""
    raised = []
    for rule in rules:
        if not rule.fires(figures):
            continue
        value = rule.value(figures)
        message = f"{subject}: {rule.figure} is {value:.4g} ({rule})"
        payload = {"subject": subject, "rule": str(rule), "figure": rule.figure,
                   "value": value, "threshold": rule.threshold, "message": message,
                   "record": record_id}
        delivery = deliver(webhook, payload, timeout) if webhook else "none"
        raised.append(ws.store.add_alert(subject, record_id, str(rule), value, message,
                                         delivery))
    return raised


def deliver(url: str, payload: Mapping[str, object], timeout: float) -> str:
    """POST ``payload``; what happened, in words (never raises)."""
    if not url.startswith(("http://", "https://")):
        return f"failed: webhook {url!r} is not an http(s) URL"
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": "keel-monitor"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return f"delivered ({answer.status})"
    except urllib.error.HTTPError as exc:
        return f"failed: the webhook answered {exc.code}"
    except TimeoutError:
        return f"failed: the webhook did not answer within {timeout:g} s"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            return f"failed: the webhook did not answer within {timeout:g} s"
        return f"failed: {reason}"
