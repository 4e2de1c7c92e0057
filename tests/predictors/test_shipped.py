"""Shipped trained models: registered with their cards, and their recorded test MAE is reproduced by the predictor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from smoacs.crystal.batch import CrystalBatch
from smoacs.predictors import load_predictor, predictor_info
from smoacs.predictors.card import ModelCard
from smoacs.predictors.shipped import model_dir
from smoacs.train import read_table

DATA = Path(__file__).parents[2].parent / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")


def _test_mae(name: str, table: Path, **columns: str) -> tuple[float, float]:
    card = ModelCard.read(model_dir(name))
    parsed = read_table(table, **columns)
    predictor = load_predictor(name)
    with torch.no_grad():
        pred = torch.cat([predictor(CrystalBatch.from_structures(parsed.structures[k : k + 256]))
                          for k in range(0, len(parsed), 256)]).numpy()  # fmt: skip
    return float(np.abs(pred - parsed.targets).mean()), card.metrics["test_mae"]


@pytest.mark.parametrize("name", ["cgcnn-supercon-tc", "crystalformer-supercon-tc", "chgnet-head-supercon-tc"])
def test_tc_models_reproduce_their_card(name: str) -> None:
    table = DATA / "supercon_test.csv.gz"
    if not table.is_file():
        pytest.skip("shared supercon data not present")
    info = predictor_info(name)
    assert info.property == "tc" and info.unit == "K"
    mae, recorded = _test_mae(name, table, transform="negate")
    assert mae == pytest.approx(recorded, abs=1e-3)


@pytest.mark.slow
def test_perov5_heat_model_reproduces_its_card() -> None:
    table = DATA / "perov5_test.csv.gz"
    if not table.is_file():
        pytest.skip("shared perov-5 data not present")
    mae, recorded = _test_mae("cgcnn-perov5-heat-of-formation", table, target_column="heat_ref")
    assert mae == pytest.approx(recorded, abs=1e-3) and mae < 0.15


def test_perov5_band_gap_card_beats_predicting_zero_on_the_gapped_rows() -> None:
    card = ModelCard.read(model_dir("chgnet-head-perov5-band-gap"))
    info = predictor_info("chgnet-head-perov5-band-gap")
    assert info.property == "band_gap" and info.unit == "eV" and card.hyper_parameters["architecture"]["kind"] == "gated-krr"
    metrics = card.metrics
    assert metrics["test_mae_nonzero"] < 0.8 * metrics["test_zero_baseline_mae_nonzero"]
    assert metrics["test_mae"] < metrics["test_median_baseline_mae"]  # the median of perov-5 gaps is 0


@pytest.mark.slow
def test_perov5_band_gap_model_reproduces_its_card() -> None:
    table = DATA / "perov5_test.csv.gz"
    if not table.is_file():
        pytest.skip("shared perov-5 data not present")
    parsed = read_table(table, target_column="dir_gap")
    predictor = load_predictor("chgnet-head-perov5-band-gap")
    with torch.no_grad():
        pred = torch.cat([predictor.final(CrystalBatch.from_structures(parsed.structures[k : k + 256]))
                          for k in range(0, len(parsed), 256)]).numpy()  # fmt: skip
    card = ModelCard.read(model_dir("chgnet-head-perov5-band-gap"))
    gapped = parsed.targets != 0
    assert float(np.abs(pred - parsed.targets).mean()) == pytest.approx(card.metrics["test_mae"], abs=1e-3)
    assert float(np.abs(pred - parsed.targets)[gapped].mean()) == pytest.approx(card.metrics["test_mae_nonzero"], abs=1e-3)
