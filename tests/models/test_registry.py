"""Registering versions, aliases, deletion, and loading by every kind of reference."""

from __future__ import annotations

import numpy as np
import pytest

import keel
import keel.models as km
from keel.errors import Conflict, InvalidInput, NotFound
from keel.workspace import current_workspace
from tests.conftest import run_python
from tests.models.fixtures import Trained


def test_register_gives_numbered_immutable_versions(trained: Trained) -> None:
    first = km.register(trained.good_uri, "bc", description="logreg")
    second = km.register(trained.poor_uri, "bc")
    assert (first.ref, second.ref) == ("bc/1", "bc/2")
    assert first.run_id == trained.good_uri.split("/")[1]
    assert km.get_version("bc").version == 2                  # latest
    assert km.get_version("bc/1").package_digest == first.package_digest
    history = current_workspace().store.model_history("bc")
    assert [(e.action, e.version) for e in history] == [("register", 1), ("register", 2)]


def test_load_by_alias_version_and_run_predicts_like_the_model(trained: Trained) -> None:
    km.register(trained.good_uri, "bc")
    km.promote("bc/1", "champion", reason="first model")
    expected = trained.good.predict(trained.features)  # type: ignore[attr-defined]
    for uri in ("models:/bc@champion", "models:/bc/1", "models:/bc/latest", trained.good_uri):
        model = keel.load_model(uri)
        assert np.array_equal(model.predict(trained.features), expected), uri
    proba = keel.load_model("models:/bc@champion").predict_proba(trained.features)
    assert np.allclose(proba, trained.good.predict_proba(trained.features))  # type: ignore[attr-defined]


def test_a_fresh_process_loads_by_alias_and_predicts_identically(trained: Trained) -> None:
    km.register(trained.good_uri, "bc")
    km.promote("bc/1", "champion", reason="first model")
    trained.holdout.to_csv("rows.csv", index=False)
    out = run_python("import keel, pandas as pd\n"
                     "frame = pd.read_csv('rows.csv').drop(columns=['target', 'region'])\n"
                     "print(list(keel.load_model('models:/bc@champion').predict(frame)))")
    assert out.returncode == 0, out.stderr
    assert eval(out.stdout) == list(trained.good.predict(trained.features))  # type: ignore[attr-defined]


def test_aliases_move_and_unknown_alias_names_the_known_ones(trained: Trained) -> None:
    km.register(trained.good_uri, "bc")
    km.register(trained.poor_uri, "bc")
    assert km.set_alias("bc/2", "challenger", reason="shadow it") is None
    assert km.set_alias("bc/1", "challenger", reason="back") == 2
    assert current_workspace().store.get_registered_model("bc").aliases == {"challenger": 1}
    with pytest.raises(NotFound, match="no alias 'champion'") as caught:
        keel.load_model("models:/bc@champion")
    assert "challenger -> 1" in (caught.value.hint or "")


def test_alias_pointing_at_a_deleted_version_is_a_clear_error(trained: Trained) -> None:
    km.register(trained.good_uri, "bc")
    km.promote("bc/1", "champion", reason="first")
    with pytest.raises(Conflict, match="named by alias"):
        km.delete_version("bc/1")                    # refused without --force
    km.delete_version("bc/1", reason="retired", force=True)
    with pytest.raises(NotFound, match="points at version 1, which is deleted"):
        keel.load_model("models:/bc@champion")
    with pytest.raises(NotFound, match="is deleted"):
        keel.load_model("models:/bc/1")
    km.restore_version("bc/1")
    assert keel.load_model("models:/bc@champion").task == "classification"
    actions = [e.action for e in current_workspace().store.model_history("bc")]
    assert actions == ["register", "promote", "delete", "restore"]


@pytest.mark.parametrize("bad", ["models:/bc/0", "models:/b c/1", "models:/bc@1",
                                 "s3://x/model", "runs:/", "models:/bc@latest/2"])
def test_bad_references_are_refused_with_a_hint(trained: Trained, bad: str) -> None:
    with pytest.raises((InvalidInput, NotFound)) as caught:
        keel.load_model(bad)
    assert caught.value.hint


def test_registering_a_run_without_a_model_says_how_to_log_one(trained: Trained) -> None:
    with keel.start_run() as run:
        run.log_metric("x", 1.0)
    with pytest.raises(NotFound, match="has no model at 'model'") as caught:
        km.register(f"runs:/{run.id}/model", "bc")
    assert "log_model" in (caught.value.hint or "")
    with pytest.raises(InvalidInput, match="bad model name"):
        km.register(trained.good_uri, "a/b")
