"""``keel lineage <request-id>``: prediction -> model version -> run -> data -> commit.

Request ids the server makes start with the time in milliseconds (12 hex
digits, then 20 random ones), so finding a prediction reads only the log
segments written around that time; an id a client chose (``X-Request-Id``)
is looked for in every segment.
"""

from __future__ import annotations

import io
import random
import re
import secrets
from typing import Any

import pandas as pd

from keel.clock import now_ms
from keel.errors import NotFound
from keel.workspace import Workspace, resolve_workspace

_TIMED = re.compile(r"[0-9a-f]{32}")
EARLIEST_MS = 1_577_836_800_000  # 2020-01-01: older "times" are not ours
SLACK_MS = 10 * 60 * 1000        # a segment's rows are written up to minutes later


def new_request_id(draw: random.Random | None = None) -> str:
    """A unique id that carries its time: 12 hex digits of ms, then 20 random ones.

    ``draw`` (a per-process generator seeded from the OS) makes the random part;
    ``secrets`` costs a system call per id, 8% of a busy server's time (py-spy
    on bench/serving.py), and an id needs to be unique, not secret.
    """
    bits = draw.getrandbits(80) if draw is not None else secrets.randbits(80)
    return f"{now_ms():012x}{bits:020x}"


def request_time(request_id: str) -> int | None:
    """The time a server-made id was issued (ms), or None for other ids."""
    if not _TIMED.fullmatch(request_id):
        return None
    moment = int(request_id[:12], 16)
    return moment if EARLIEST_MS <= moment <= now_ms() + 86_400_000 else None


def find_request(request_id: str, ws: Workspace) -> pd.DataFrame:
    """Every logged row of ``request_id`` (live and shadow), or an empty frame."""
    moment = request_time(request_id)
    start, end = (moment - SLACK_MS, moment + SLACK_MS) if moment is not None else (None, None)
    found = []
    for _, digest, _ in ws.store.inference_segments(None, start, end):
        table = pd.read_parquet(io.BytesIO(ws.blobs.get_bytes(digest)),
                                filters=[("request_id", "==", request_id)])
        if len(table):
            found.append(table)
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame()


def request_lineage(request_id: str, ws: Workspace | None = None) -> dict[str, Any]:
    """The prediction(s) made for ``request_id`` and the lineage of the model
    version that answered (see :func:`keel.models.lineage.lineage`)."""
    from keel.models.lineage import lineage

    ws = resolve_workspace(ws)
    rows = find_request(request_id, ws)
    if rows.empty:
        raise NotFound(f"no prediction with request id {request_id!r} in the inference log",
                       hint="take the id from a response's request_id (or X-Request-Id); "
                            "predictions reach the log a few seconds after they are made")
    meta = {"request_id", "row", "time", "deployment", "model_version", "role", "latency_ms",
            "prediction"}
    feedback = ws.store.feedback_for([request_id]).get(request_id)
    answers = []
    for (version, role), part in rows.groupby(["model_version", "role"], sort=False):
        part = part.sort_values("row")
        inputs = part[[c for c in part.columns if c not in meta]]
        answers.append({"model_version": version, "role": role,
                        "deployment": part["deployment"].iloc[0],
                        "time": int(part["time"].iloc[0]),
                        "latency_ms": float(part["latency_ms"].iloc[0]),
                        "rows": len(part), "inputs": inputs.to_dict(orient="records"),
                        "predictions": part["prediction"].tolist()})
    answers.sort(key=lambda a: a["role"] != "live")
    live = answers[0]
    out: dict[str, Any] = {"subject": request_id, "kind": "prediction",
                           "prediction": {"request_id": request_id, **live,
                                          "label": feedback},
                           "shadows": answers[1:]}
    try:
        model = lineage(live["model_version"], ws)
    except NotFound as exc:  # served from a folder or a run: say so, keep the prediction
        out["model_note"] = exc.message
        return out
    out.update({k: v for k, v in model.items() if k not in ("subject", "kind")})
    return out
