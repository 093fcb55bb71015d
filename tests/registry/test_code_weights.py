"""The weights of custom code models beyond NumPy .npz: arrays in safetensors, and models of
the other flavors (a scikit-learn pipeline, an XGBoost classifier) stored in their own
formats inside the version's one archive, each checked against its digest when read."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import shipyard
from shipyard.errors import InvalidInputError, MissingDependencyError
from shipyard.registry.flavors import UntrustedModelError, load_model, save_model
from shipyard.registry.flavors.bundle import MANIFEST
from shipyard.registry.flavors.code import CodeModel, CodeNotApprovedError
from tests.registry.flavor_code_blend import Blend, Linear

xgboost = pytest.importorskip("xgboost")
pytest.importorskip("safetensors")

RNG = np.random.default_rng(3)
X = pd.DataFrame({"a": RNG.normal(size=200), "b": RNG.normal(size=200)})
Y = (X["a"] - 0.5 * X["b"] + RNG.normal(0, 0.3, 200) > 0).astype(int)


def _shift(x: Any) -> Any:  # a function of our own: skops does not trust it
    return x + 1


def _blend(first: Any = None) -> CodeModel:
    first = first if first is not None else make_pipeline(StandardScaler(), LogisticRegression())
    second = xgboost.XGBClassifier(n_estimators=6, max_depth=2, n_jobs=1)
    return CodeModel(
        Blend,
        {
            "first": first.fit(X, Y),
            "second": second.fit(X, Y),
            "alpha": np.asarray([0.3]),
            "columns": np.asarray(["a", "b"]),
        },
    )


def _linear(**kw: Any) -> CodeModel:
    weights = {"coef": np.asarray([1.5, -0.7]), "intercept": np.asarray(0.2), "classes": [0, 1]}
    return CodeModel(Linear, {**weights, **kw}, weights_format="safetensors")


def _entries(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {n: archive.read(n) for n in archive.namelist()}


def _write(path: Path, entries: dict[str, bytes]) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    path.write_bytes(buffer.getvalue())


def test_safetensors_weights_round_trip_and_text_is_refused(tmp_path: Path) -> None:
    """With weights_format="safetensors" the arrays are one safetensors file (no .npz), the
    version's format says so, and the approved model answers exactly as before; a text
    array is refused with the advice to use npz; a damaged file is refused when read."""
    model = _linear()
    saved = save_model(model, tmp_path / "model.bin")
    assert (saved.flavor, saved.format) == ("code", "python+safetensors")
    assert "safetensors" in saved.versions
    assert sorted(_entries(tmp_path / "model.bin")) == sorted(
        [MANIFEST, "model.py", "weights.safetensors"]
    )
    loaded = load_model(tmp_path / "model.bin", approved_code=[model.code_digest])
    rows = X.to_numpy()
    np.testing.assert_array_equal(loaded.predict_proba(rows), model.predict_proba(rows))
    assert loaded.weights["coef"].dtype == np.float64 and loaded.weights_format == "safetensors"

    with pytest.raises(
        InvalidInputError, match=r"'names' is an array of <U1.*weights_format='npz'"
    ):
        _linear(names=np.asarray(["a", "b"]))

    entries = _entries(tmp_path / "model.bin")
    entries["weights.safetensors"] = entries["weights.safetensors"][:-8]
    _write(tmp_path / "damaged.bin", entries)
    with pytest.raises(InvalidInputError, match="cannot read its safetensors weights"):
        load_model(tmp_path / "damaged.bin", approved_code=[model.code_digest])


def test_safetensors_without_its_extra_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _linear()
    save_model(model, tmp_path / "model.bin")
    monkeypatch.setitem(sys.modules, "safetensors", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'shipyard\[safetensors\]'"):
        load_model(tmp_path / "model.bin", approved_code=[model.code_digest])
    with pytest.raises(MissingDependencyError, match=r"shipyard\[safetensors\]"):
        save_model(model, tmp_path / "again.bin")


def test_models_among_the_weights_are_stored_in_their_flavors(tmp_path: Path) -> None:
    """A scikit-learn pipeline and an XGBoost classifier among the weights are written with
    skops and XGBoost's format, each with its digest in the manifest; loaded back (the code
    approved) they are those models again and the blend answers exactly as before; unapproved,
    nothing runs."""
    model = _blend()
    saved = save_model(model, tmp_path / "model.bin")
    assert saved.format == "python+npz" and saved.versions["xgboost"] == xgboost.__version__
    entries = _entries(tmp_path / "model.bin")
    manifest = json.loads(entries[MANIFEST])
    assert {k: v["flavor"] for k, v in manifest["models"].items()} == {
        "first": "sklearn",
        "second": "xgboost",
    }
    assert "models/0.sklearn" in entries and "models/1.xgboost" in entries

    with pytest.raises(CodeNotApprovedError):
        load_model(tmp_path / "model.bin")
    loaded = load_model(tmp_path / "model.bin", approved_code=[model.code_digest])
    assert isinstance(loaded.first, Pipeline)
    assert isinstance(loaded.second, xgboost.XGBClassifier)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_a_swapped_model_weight_is_refused_by_its_digest(tmp_path: Path) -> None:
    """Replacing a model part with another valid model (the manifest left as it was) is
    refused by the digest the manifest records, before any code runs."""
    model = _blend()
    save_model(model, tmp_path / "model.bin")
    other = make_pipeline(StandardScaler(), LogisticRegression(C=0.01)).fit(X, Y)
    save_model(other, tmp_path / "other.skops")
    entries = _entries(tmp_path / "model.bin")
    entries["models/0.sklearn"] = (tmp_path / "other.skops").read_bytes()
    _write(tmp_path / "swapped.bin", entries)
    with pytest.raises(InvalidInputError, match="'first' does not match the digest"):
        load_model(tmp_path / "swapped.bin", approved_code=[model.code_digest])

    manifest = json.loads(entries[MANIFEST])
    manifest["parts"]["model:third"] = "models/2.sklearn"
    entries = {**_entries(tmp_path / "model.bin"), MANIFEST: json.dumps(manifest).encode()}
    entries["models/2.sklearn"] = (tmp_path / "other.skops").read_bytes()
    _write(tmp_path / "extra.bin", entries)
    with pytest.raises(InvalidInputError, match="the models its manifest names"):
        load_model(tmp_path / "extra.bin", approved_code=[model.code_digest])


def test_a_weight_with_untrusted_code_is_refused_at_registration(tmp_path: Path) -> None:
    """A pipeline over a function of the user's own among the weights names that function as
    untrusted: registering refuses it, and so does loading the file even with the code
    approved."""
    model = _blend(make_pipeline(FunctionTransformer(_shift), LogisticRegression()))
    saved = save_model(model, tmp_path / "model.bin")
    assert any(t.endswith("_shift") for t in saved.untrusted_types)
    with pytest.raises(UntrustedModelError, match="_shift"):
        load_model(tmp_path / "model.bin", approved_code=[model.code_digest])
    with shipyard.init_project(tmp_path / "proj") as project:
        with pytest.raises(UntrustedModelError, match="_shift"):
            project.models.register_model("blend", model, input_example=X.head())
        assert project.models.list() == []


def test_a_blend_registers_loads_once_approved_and_scores_a_file(tmp_path: Path) -> None:
    """Through the registry: alice logs the blend with an input example (signature a, b);
    loading refuses until bob approves the code (its review lists the models among the
    weights); then batch scoring gives the blend's predictions."""
    model = _blend()
    with shipyard.init_project(tmp_path / "proj", actor="alice") as project:
        project.users.add("bob", "approver")
        with project.start_run(experiment="blend") as run:
            v = run.log_model(model, "blend", input_example=X.head())
        assert v.flavor == "code" and list(v.signature["inputs"]["columns"]) == ["a", "b"]
        with pytest.raises(CodeNotApprovedError):
            project.models.load("blend@1")
        review = project.models.code("blend@1")  # what the approver reads
        assert review.models == {"first": "sklearn", "second": "xgboost"}
        assert review.weights_format == "npz" and "class Blend" in review.source
        project.as_actor("bob").models.approve_code("blend@1")
        X.to_csv(tmp_path / "rows.csv", index=False)
        doc = project.models.predict_file("blend@1", tmp_path / "rows.csv", tmp_path / "out.csv")
        assert doc["scored"] == len(X)
        np.testing.assert_array_equal(
            pd.read_csv(tmp_path / "out.csv")["prediction"], model.predict(X)
        )
