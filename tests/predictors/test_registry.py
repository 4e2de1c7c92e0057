"""Predictor registry: listing, lookup errors, loading in evaluation mode, the Predictor protocol."""

from __future__ import annotations

import pytest
import torch

from smoacs.errors import PredictorError
from smoacs.predictors import Predictor, available_predictors, load_predictor, predictor_info, register
from smoacs.predictors.cgcnn import checkpoint_path, load_cgcnn

BUILTIN = {
    "cgcnn-band-gap": "band_gap",
    "cgcnn-formation-energy": "formation_energy",
    "cgcnn-bulk-modulus": "bulk_modulus",
    "cgcnn-shear-modulus": "shear_modulus",
    "cgcnn-efermi": "efermi",
    "cgcnn-total-energy": "total_energy",
    "cgcnn-poisson-ratio": "poisson_ratio",
}


def test_available_predictors_sorted_with_info() -> None:
    infos = available_predictors()
    names = [info.name for info in infos]
    assert names == sorted(names)
    by_name = {info.name: info for info in infos}
    for name, prop in BUILTIN.items():
        assert by_name[name].property == prop
        assert by_name[name].training_data and by_name[name].source
    assert predictor_info("cgcnn-band-gap").unit == "eV"
    assert predictor_info("cgcnn-bulk-modulus").unit == "GPa"


def test_unknown_predictor_names_the_known_ones() -> None:
    with pytest.raises(PredictorError, match="unknown predictor 'nope'.*cgcnn-band-gap"):
        load_predictor("nope")
    with pytest.raises(ValueError):  # PredictorError is also a ValueError
        predictor_info("nope")


def test_register_twice_rejected() -> None:
    with pytest.raises(PredictorError, match="registered twice"):
        register(predictor_info("cgcnn-band-gap"), lambda: None)


def test_loaded_predictor_is_frozen_and_follows_protocol() -> None:
    predictor = load_predictor("cgcnn-formation-energy")
    assert isinstance(predictor, Predictor)
    assert isinstance(predictor, torch.nn.Module) and not predictor.training
    assert not any(p.requires_grad for p in predictor.parameters())
    assert load_predictor("cgcnn-formation-energy") is not predictor  # a fresh instance per call


def test_toy_predictor_follows_protocol(toy_predictor) -> None:  # noqa: ANN001
    assert isinstance(toy_predictor, Predictor)


def test_missing_checkpoint() -> None:
    with pytest.raises(PredictorError, match="checkpoint not found"):
        load_cgcnn(checkpoint_path("does-not-exist"))
