"""Models: the registry, gated promotion, evaluation, lineage, batch inference
and autologging. Packages themselves live in :mod:`keel.packaging`.

>>> keel.models.register("runs:/3f2a.../model", "churn")          # churn/1
>>> keel.models.promote("churn/1", "champion", reason="first model")
>>> keel.load_model("models:/churn@champion").predict(frame)
"""

from keel.errors import GateFailed
from keel.models.autolog import autolog
from keel.models.evaluate import Evaluation, evaluate
from keel.models.gates import GatePolicy, GateReport, GateResult, Requirement
from keel.models.lineage import lineage
from keel.models.load import load_model
from keel.models.predict import batch_predict
from keel.models.promote import Promotion, check, promote
from keel.models.registry import (
    delete_version,
    get_version,
    register,
    resolve,
    restore_version,
    set_alias,
)

__all__ = [
    "Evaluation",
    "GateFailed",
    "GatePolicy",
    "GateReport",
    "GateResult",
    "Promotion",
    "Requirement",
    "autolog",
    "batch_predict",
    "check",
    "delete_version",
    "evaluate",
    "get_version",
    "lineage",
    "load_model",
    "promote",
    "register",
    "resolve",
    "restore_version",
    "set_alias",
]
