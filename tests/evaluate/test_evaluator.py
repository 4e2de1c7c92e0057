"""evaluate_design on a toy predictor: one-hot re-prediction, criteria, success and row contents."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pymatgen.core import Structure

from conftest import ToyPredictor, choose_composition
from smoacs.chem import crystal_radius
from smoacs.design import DesignSpace
from smoacs.evaluate import EvaluationSettings, evaluate_design, predict_discrete
from smoacs.objectives import Range, Window
from smoacs.optimize import OptimizationResult
from smoacs.templates import perovskite_templates
from smoacs.templates.files import general_from_structure


@pytest.fixture
def evaluated():
    templates = perovskite_templates(3, seed=4, length_range=(3.8, 4.2))
    space = DesignSpace(templates, seed=0)
    choose_composition(space, 0, 1, ["Sr", "Ti", "O", "O", "O"])
    choose_composition(space, 1, 1, ["Ba", "Ti", "O", "O", "O"])
    choose_composition(space, 2, 0, ["K", "Mg", "F", "F", "F"])
    predictor = ToyPredictor()
    values = predict_discrete(space.discretize(), [predictor])["band_gap"]
    objectives = [Window("band_gap", float(values[0]), 0.01, 0.05), Range("tolerance", 0.8, 1.0)]
    result = OptimizationResult(
        history={"loss": np.zeros((2, 3), dtype=np.float32), "band_gap": np.ones((2, 3), dtype=np.float32)},
        quarantine={2: "non-finite loss at step 0"},
        template_index=np.array([0, 0, 2]),
        copied_from=np.array([-1, 0, -1]),
    )
    ids = ["c00000", "c00001", "c00002"]
    evaluation = evaluate_design(space, [predictor], objectives, EvaluationSettings(), result, ids)
    return space, values, evaluation


def test_rows_and_success(evaluated) -> None:  # noqa: ANN001
    space, values, evaluation = evaluated
    rows = evaluation.rows
    assert [row["id"] for row in rows] == ["c00000", "c00001", "c00002"]
    assert [row["formula"] for row in rows] == ["SrTiO3", "BaTiO3", "KMgF3"]
    assert evaluation.criteria == ["band_gap_ok", "tolerance_ok", "neutral_ok", "perovskite_ok"]
    for row in rows:
        expected = row["quarantined"] == "" and all(row[c] for c in evaluation.criteria)
        assert row["success"] == expected
    assert rows[0]["success"] and rows[0]["band_gap_ok"]
    assert rows[2]["quarantined"] == "non-finite loss at step 0" and not rows[2]["success"]
    assert rows[2]["neutral_ok"] and rows[2]["perovskite_ok"], "quarantine alone makes it fail"
    assert rows[1]["band_gap"] != pytest.approx(rows[0]["band_gap"], abs=0.05)
    assert not rows[1]["band_gap_ok"] and not rows[1]["success"]
    assert rows[0]["oxidation_states"] == "Sr+2 Ti+4 O-2 O-2 O-2"
    assert rows[2]["pattern_oxidation_states"] == "K+1 Mg+2 F-1 F-1 F-1"
    assert rows[1]["copied_from"] == "c00000" and rows[0]["copied_from"] == ""
    assert [row["template"] for row in rows] == [space.templates[i].name for i in (0, 0, 2)]
    assert evaluation.arrays["success"].tolist() == [r["success"] for r in rows]


def test_values_match_independent_computations(evaluated) -> None:  # noqa: ANN001
    space, values, evaluation = evaluated
    rows, structures = evaluation.rows, evaluation.structures
    r = crystal_radius
    expected_t = (r("Sr", 2) + r("O", -2)) / (math.sqrt(2) * (r("Ti", 4) + r("O", -2)))
    assert rows[0]["tolerance"] == pytest.approx(expected_t, rel=1e-6)
    for row, structure in zip(rows, structures, strict=True):
        assert isinstance(structure, Structure)
        assert row["n_atoms"] == len(structure) == 5
        # Exact periodic minimum distance (cubic-ish cell, B–X at a/2).
        dist = structure.distance_matrix + np.eye(5) * 100
        assert row["min_distance"] == pytest.approx(min(dist.min(), min(structure.lattice.abc)), abs=1e-6)
        assert row["a"] == pytest.approx(structure.lattice.a) and row["alpha"] == pytest.approx(90.0)
        assert row["volume_per_atom"] == pytest.approx(structure.volume / 5)
        assert row["density"] == pytest.approx(structure.density)
        assert row["max_displacement"] <= 0.15 + 1e-9
    np.testing.assert_allclose([row["band_gap"] for row in rows], values.double().numpy(), rtol=1e-6)
    arrays = evaluation.arrays
    assert arrays["lattice"].shape == (3, 3, 3) and arrays["species"].shape == (15,)
    assert arrays["history_loss"].shape == (2, 3)
    assert set(arrays) >= {"final_band_gap", "final_tolerance", "final_min_distance", "pattern", "frac_coords"}


def test_general_templates_have_no_perovskite_criterion(rock_salt: Structure) -> None:
    space = DesignSpace([general_from_structure(rock_salt, "nacl")], seed=0)
    result = OptimizationResult({}, {}, np.array([0]), np.array([-1]))
    settings = EvaluationSettings(check_neutrality=False)
    evaluation = evaluate_design(space, [ToyPredictor()], [Window("band_gap", 0.0)], settings, result, ["x"])
    assert evaluation.criteria == ["band_gap_ok"]
    assert "perovskite_ok" not in evaluation.rows[0] and evaluation.rows[0]["oxidation_states"] == ""
