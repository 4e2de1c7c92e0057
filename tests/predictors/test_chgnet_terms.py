"""Objective terms on the potential's outputs: CHGNet pressure (GPa) and largest residual force (eV/Å)."""

from __future__ import annotations

from pathlib import Path

import torch
from pymatgen.core import Lattice, Structure

from smoacs.config import config_from_dict
from smoacs.crystal.batch import CrystalBatch
from smoacs.predictors.registry import load_predictor, predictor_info
from smoacs.runner import run


def _batch() -> CrystalBatch:
    cubic = Structure(Lattice.cubic(3.7), ["Sr", "Ti", "O", "O", "O"],
                      [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.52]])  # fmt: skip
    rock = Structure(Lattice.cubic(6.2), ["Na", "Cl"] * 4,
                     [[0, 0, 0], [0.5, 0, 0], [0.5, 0.5, 0], [0, 0.5, 0], [0.5, 0, 0.5], [0, 0, 0.5], [0, 0.5, 0.5],
                      [0.5, 0.5, 0.5]])  # fmt: skip
    return CrystalBatch.from_structures([cubic, rock])


def test_pressure_and_max_force_match_the_potential() -> None:
    batch = _batch()
    reference = load_predictor("chgnet").compute(batch)
    pressure = load_predictor("chgnet-pressure")
    force = load_predictor("chgnet-max-force")
    assert predictor_info("chgnet-pressure").property == "pressure" and predictor_info("chgnet-pressure").unit == "GPa"
    assert torch.allclose(pressure.final(batch), reference.pressure, atol=1e-4)
    assert torch.allclose(force.final(batch), reference.max_force(batch.crystal_idx), atol=1e-5)
    assert float(pressure.final(batch)[0]) > 0  # SrTiO3 at 3.7 Å is compressed (CHGNet's a0 ≈ 3.9 Å)


def test_pressure_is_differentiable_in_the_lattice() -> None:
    batch = _batch()
    lattice = batch.lattice.clone().requires_grad_()
    crystals = CrystalBatch(lattice, batch.frac_coords, batch.species_probs, batch.crystal_idx, batch.n_atoms)
    load_predictor("chgnet-pressure")(crystals).sum().backward()
    assert lattice.grad is not None and bool(torch.isfinite(lattice.grad).all()) and float(lattice.grad.abs().sum()) > 0


def test_a_config_with_a_pressure_objective_runs(tmp_path: Path) -> None:
    config = config_from_dict({
        "out": str(tmp_path / "run"), "candidates": 2, "batch_size": 2, "device": "cpu",
        "predictors": {"band_gap": "cgcnn-band-gap", "pressure": "chgnet-pressure"},
        "objectives": [{"kind": "window", "property": "band_gap", "target": 2.0},
                       {"kind": "range", "property": "pressure", "range": [-1.0, 1.0]}],
        "optimizer": {"steps": 3, "copy_mutate_steps": []},
        "physics": {"potential": "none"},
    })  # fmt: skip
    result = run(config, progress=False)
    assert all("pressure" in row and "pressure_ok" in row for row in result.rows)
