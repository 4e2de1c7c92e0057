"""The cross-dataset preset that needs a user-supplied model: perovskite-bandgap-ehull (band gap + your E_hull model)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from smoacs.chem.elements import element_index
from smoacs.crystal.batch import CrystalBatch
from smoacs.errors import ConfigError
from smoacs.objectives.terms import Below, Window
from smoacs.predictors.alignn import from_path
from smoacs.config import check_user_models
from smoacs.presets import E_HULL_BELOW, PRESETS, build_config

FIXTURES = Path(
    os.environ.get("SMOACS_ALIGNN_FIXTURES", Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "alignn")
)


def _legacy_zip() -> Path:
    path = FIXTURES / "legacy_model.zip"
    if not path.is_file():
        pytest.fail(f"ALIGNN fixture missing: {path} (expected ../shared/fixtures/alignn next to the repository)")
    return path


def test_ehull_preset_declares_its_objectives_and_user_model() -> None:
    config = build_config("perovskite-bandgap-ehull", target=4.5)
    assert PRESETS["perovskite-bandgap-ehull"].user_models == ("e_hull",)
    assert config.predictors["band_gap"] == "cgcnn-band-gap"
    assert config.objectives[:2] == (Window("band_gap", 4.5, 0.04, 0.2), E_HULL_BELOW)
    assert E_HULL_BELOW == Below("e_hull", 0.5, margin=0.2, weight=1.0)
    assert "formation_energy" not in config.predictors
    assert config.judge == {"band_gap": "megnet-mf-band-gap:fidelity=pbe"}


def test_ehull_preset_without_a_model_stops_with_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        check_user_models(build_config("perovskite-bandgap-ehull"))
    message = str(info.value)
    assert "\n" not in message
    assert "needs your own e_hull model" in message and "--predictor e_hull=alignn:" in message
    check_user_models(build_config("perovskite-bandgap"))  # presets without user models pass


def test_ehull_preset_with_a_model_passes_and_the_fixture_model_drives_the_objective() -> None:
    path = _legacy_zip()
    config = build_config("perovskite-bandgap-ehull")
    config = config.with_overrides(predictors={**config.predictors, "e_hull": f"alignn:{path}"})
    check_user_models(config)
    model = from_path(str(path), property="e_hull", unit="eV/atom")
    assert (model.info.property, model.info.unit) == ("e_hull", "eV/atom")
    sizes = torch.tensor([3.905, 4.0], dtype=torch.float64)
    lattice = torch.eye(3, dtype=torch.float64).repeat(2, 1, 1) * sizes[:, None, None]
    frac = torch.tensor([[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]] * 2, dtype=torch.float64)
    species = torch.tensor([element_index(e) for e in ("Sr", "Ti", "O", "O", "O", "Ba", "Ti", "O", "O", "O")])
    batch = CrystalBatch.from_species(lattice.requires_grad_(), frac, species, torch.tensor([5, 5]))
    loss = E_HULL_BELOW.loss({"e_hull": model(batch) + 20.0})  # random weights give ≈ −5: shift so the hinge is active
    loss.sum().backward()
    assert torch.isfinite(loss).all() and lattice.grad is not None and lattice.grad.abs().sum() > 0
