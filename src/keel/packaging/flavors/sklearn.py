"""scikit-learn models, saved with skops: loading rebuilds objects from a schema
and never unpickles, so a package cannot run code when it is opened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keel.errors import Forbidden, InvalidInput

NAME = "sklearn"
MODEL_FILE = "model.skops"

# skops trusts plain estimators itself but lists the Cython and helper classes
# below as "untrusted" because it cannot vouch for them in general. These are
# scikit-learn's own tree structures; anything else a file asks for is refused.
KNOWN_SKLEARN_TYPES = frozenset({
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn._loss.link.Interval",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.LogLink",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss.loss.HalfSquaredError",
    "sklearn._loss.loss.HalfPoissonLoss",
    "sklearn._loss.loss.AbsoluteError",
    "sklearn._loss.loss.PinballLoss",
    "sklearn._loss.loss.HuberLoss",
    "sklearn._loss.loss.ExponentialLoss",
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn._loss._loss.CyHalfMultinomialLoss",
    "sklearn._loss._loss.CyHalfSquaredError",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    "numpy.random._pcg64.PCG64",
    "numpy.random._mt19937.MT19937",
    "numpy.random.mtrand.RandomState",
    "numpy.random._generator.Generator",
    "collections.OrderedDict",
})


def matches(model: Any) -> bool:
    module = type(model).__module__
    if not module.startswith("sklearn"):
        return False
    from sklearn.base import BaseEstimator

    return isinstance(model, BaseEstimator)


def save(model: Any, folder: Path) -> str:
    import skops.io as sio

    sio.dump(model, folder / MODEL_FILE)
    return MODEL_FILE


def describe(model: Any) -> dict[str, Any]:
    """Task and class labels, read from the fitted estimator."""
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(model):
        classes = getattr(model, "classes_", None)
        return {"task": "classification",
                "classes": [c.item() if hasattr(c, "item") else c for c in classes]
                if classes is not None else None}
    if is_regressor(model):
        return {"task": "regression", "classes": None}
    return {"task": None, "classes": None}


def load(path: Path, trust: bool = False, trusted_types: tuple[str, ...] = ()) -> Any:
    """Rebuild the estimator; refuse types outside scikit-learn's known ones."""
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    data = path.read_bytes()  # read once: the type check and the load share it
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # zipfile/json errors: not a skops file at all
        raise InvalidInput(f"{path.name} is not a readable skops file ({exc})",
                           hint="the package is damaged or was not written by keel") from exc
    allowed = KNOWN_SKLEARN_TYPES | set(trusted_types)
    refused = [t for t in untrusted if t not in allowed]
    if refused and not trust:
        raise Forbidden(f"{path.name} asks to load types keel does not trust: "
                        f"{', '.join(refused)}",
                        hint="inspect the package; if you trust its author, load it with "
                             "trust=True or trusted_types=[...]")
    try:
        return sio.loads(data, trusted=untrusted)
    except UntrustedTypesFoundException as exc:  # pragma: no cover - checked above
        raise Forbidden(str(exc)) from exc


def predict(raw: Any, data: Any) -> Any:
    return raw.predict(data)


def predict_proba(raw: Any, data: Any) -> Any | None:
    method = getattr(raw, "predict_proba", None)
    return None if method is None else method(data)


def requirements() -> list[str]:
    return ["scikit-learn", "skops", "numpy", "scipy"]
