"""RunDirectory: one layout, appending mini-batches, reading structures and finished batches back."""

from __future__ import annotations

import numpy as np
from pathlib import Path

from conftest import ToyPredictor
from smoacs.design import DesignSpace, Provenance
from smoacs.evaluate import EvaluationSettings, evaluate_design
from smoacs.io.rundir import RESULT_CSV, RUN_JSON, RunDirectory, parse_value
from smoacs.objectives import Range, Window
from smoacs.templates import perovskite_templates

OBJECTIVES = [Window("band_gap", 2.0), Range("tolerance", 0.8, 1.0)]


def _batch(seed: int, first: int):  # noqa: ANN202
    space = DesignSpace(perovskite_templates(3, seed=seed), seed=seed)
    ids = [f"c{first + i:05d}" for i in range(3)]
    return evaluate_design(space, [ToyPredictor("band_gap")], OBJECTIVES, EvaluationSettings(), Provenance.untouched(3), ids)


def test_layout_names() -> None:
    directory = RunDirectory("/x/run")
    assert directory.result_csv == Path("/x/run") / RESULT_CSV
    assert directory.run_json == Path("/x/run") / RUN_JSON
    assert RunDirectory.cif_name("c00001") == "structures/c00001.cif"
    assert RunDirectory.poscar_name("c00001") == "poscar/c00001.vasp"


def test_structures_read_back_in_site_order(tmp_path: Path) -> None:
    directory = RunDirectory(tmp_path / "run")
    evaluation = _batch(0, 0)
    directory.append(evaluation.rows, evaluation.structures)
    for row, structure in zip(evaluation.rows, evaluation.structures, strict=True):
        back = directory.read_structure(row, row["n_atoms"])
        assert [s.specie.symbol for s in back] == [s.specie.symbol for s in structure]
        np.testing.assert_allclose(back.frac_coords, structure.frac_coords, atol=1e-6)


def test_read_finished_keeps_complete_batches_only(tmp_path: Path) -> None:
    directory = RunDirectory(tmp_path / "run")
    first, second = _batch(0, 0), _batch(1, 3)
    directory.append(first.rows, first.structures)
    directory.write_npz(first.arrays)
    directory.append(second.rows, second.structures)  # interrupted before its result.npz write
    ids = [[r["id"] for r in first.rows], [r["id"] for r in second.rows]]
    state = directory.read_finished(ids, {"config": {}})
    assert state.n_batches == 1
    assert [r["id"] for r in state.rows] == ids[0]
    assert state.rows[0]["success"] == first.rows[0]["success"] and isinstance(state.rows[0]["n_atoms"], int)
    assert directory.result_csv.read_text().count("\n") == 1 + 3, "the unfinished rows are dropped"
    assert len(state.arrays["species"]) == 15


def test_parse_value_types() -> None:
    assert parse_value("success", "True") is True
    assert parse_value("n_atoms", "5") == 5
    assert parse_value("band_gap", "0.5") == 0.5
    assert parse_value("formula", "1") == "1"
