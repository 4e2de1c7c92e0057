"""Run-directory writers: result.csv columns, appending, CIF/POSCAR round trips, summary, npz, json, plot."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Structure
from pymatgen.io.vasp import Poscar

from conftest import ToyPredictor
from smoacs.design import DesignSpace
from smoacs.evaluate import EvaluationSettings, evaluate_design
from smoacs.evaluate.summary import summarize
from smoacs.io import RunDirectory, csv_text, plot_history, to_cif, to_poscar
from smoacs.objectives import Below, Range, Window
from smoacs.optimize import OptimizationResult
from smoacs.templates import perovskite_templates

OBJECTIVES = [Window("band_gap", 2.0), Below("formation_energy", 3.0), Range("tolerance", 0.8, 1.0)]
REQUIRED = ["id", "template", "formula", "n_atoms", "success", "band_gap", "formation_energy", "band_gap_ok",
            "formation_energy_ok", "tolerance_ok", "neutral_ok", "perovskite_ok", "oxidation_states", "min_distance",
            "tolerance", "cif"]  # fmt: skip


def _evaluation(seed: int, first: int):  # noqa: ANN202
    space = DesignSpace(perovskite_templates(3, seed=seed), seed=seed)
    predictors = [ToyPredictor("band_gap"), ToyPredictor("formation_energy")]
    result = OptimizationResult({"loss": np.zeros((4, 3))}, {}, np.arange(3), np.full(3, -1))
    ids = [f"c{first + i:05d}" for i in range(3)]
    return evaluate_design(space, predictors, OBJECTIVES, EvaluationSettings(), result, ids)


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture
def written(tmp_path: Path):
    writer = RunDirectory(tmp_path / "run")
    batches = [_evaluation(0, 0), _evaluation(1, 3)]
    for evaluation in batches:
        writer.append(evaluation.rows, evaluation.structures)
    return writer, batches


def test_result_csv_columns_and_rows(written) -> None:  # noqa: ANN001
    writer, batches = written
    columns, rows = _read_csv(writer.result_csv)
    assert set(REQUIRED) <= set(columns)
    assert columns[:5] == ["id", "template", "formula", "n_atoms", "success"]
    assert [row["id"] for row in rows] == [f"c{i:05d}" for i in range(6)]
    assert writer.result_csv.read_text().count("id,template") == 1, "one header; later batches are appended"
    original = [row for evaluation in batches for row in evaluation.rows]
    for row, expected in zip(rows, original, strict=True):
        assert float(row["band_gap"]) == expected["band_gap"], "floats are written at full precision"
        assert row["success"] in ("True", "False") and row["success"] == str(expected["success"])
        assert row["cif"] == f"structures/{row['id']}.cif" and row["poscar"] == f"poscar/{row['id']}.vasp"


def test_structures_parse_back(written) -> None:  # noqa: ANN001
    writer, batches = written
    structures = [s for evaluation in batches for s in evaluation.structures]
    _, rows = _read_csv(writer.result_csv)
    for row, structure in zip(rows, structures, strict=True):
        from_cif = Structure.from_file(writer.out_dir / row["cif"])
        assert from_cif.composition == structure.composition
        assert from_cif.composition.reduced_formula == row["formula"]
        np.testing.assert_allclose(from_cif.lattice.abc, structure.lattice.abc, rtol=1e-6)
        poscar = Poscar.from_file(writer.out_dir / row["poscar"])
        assert poscar.structure.composition == structure.composition
        assert poscar.comment == f"{row['id']} {row['formula']}"
        np.testing.assert_allclose(poscar.structure.frac_coords, structure.frac_coords, atol=1e-7)


def test_pure_text_functions(srtio3: Structure) -> None:
    cif = to_cif(srtio3)
    assert "_cell_length_a" in cif and Structure.from_str(cif, fmt="cif").composition == srtio3.composition
    assert to_poscar(srtio3, "hello").splitlines()[0] == "hello"
    text = csv_text([{"a": 0.1 + 0.2, "b": True}, {"a": 1}], ["a", "b"], header=True)
    assert text == "a,b\n0.30000000000000004,True\n1,\n"


def _varied_structures() -> list[Structure]:
    """Ordered structures the POSCAR writer must format as pymatgen does: skewed, supercell, unsorted species,
    oxidation states, negative and tiny coordinates, a left-handed lattice (pymatgen's own path)."""
    from pymatgen.core import Lattice

    rng = np.random.default_rng(3)
    skewed = Lattice.from_parameters(3.1, 4.7, 9.25, 71.0, 102.5, 118.0)
    out = [
        Structure(skewed, ["Cs", "Pb", "I", "I", "Br"], rng.random((5, 3))),
        Structure(Lattice.cubic(4.0), ["O", "Sr", "O", "Ti", "O"], rng.random((5, 3)) - 0.5),  # species not grouped
        Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [1e-12, 0.5, 0.5]]),
        Structure(Lattice(np.diag([3.0, 3.0, -3.0])), ["K", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]]),  # left-handed
    ]
    charged = out[2].copy()
    charged.add_oxidation_state_by_element({"Na": 1, "Cl": -1})
    big = out[0].copy()
    big.make_supercell([2, 2, 3])
    return [*out, charged, big]


@pytest.mark.parametrize("index", range(6))
def test_poscar_text_is_pymatgens(index: int) -> None:
    structure = _varied_structures()[index]
    expected = Poscar(structure, comment="c00001 CsPbI2Br").get_str(significant_figures=8)
    assert to_poscar(structure, "c00001 CsPbI2Br") == expected


def test_poscar_refuses_disorder_as_pymatgen_does(srtio3: Structure) -> None:
    disordered = srtio3.copy()
    disordered.replace_species({"Sr": {"Sr": 0.5, "Ba": 0.5}})
    with pytest.raises(ValueError, match="Disordered"):
        to_poscar(disordered, "x")


def test_summary_npz_json(tmp_path: Path) -> None:
    writer = RunDirectory(tmp_path)
    evaluation = _evaluation(2, 0)
    summary = summarize(evaluation.rows, evaluation.criteria)
    writer.write_summary(summary)
    columns, rows = _read_csv(tmp_path / "result_summary.csv")
    assert columns == list(summary) and len(rows) == 1 and int(rows[0]["n_candidates"]) == 3
    writer.write_npz(evaluation.arrays)
    with np.load(tmp_path / "result.npz") as data:
        np.testing.assert_array_equal(data["species"], evaluation.arrays["species"])
    writer.write_json("run.json", {"b": 1, "a": Path("x")})
    assert json.loads((tmp_path / "run.json").read_text()) == {"a": "x", "b": 1}


def test_history_plot(tmp_path: Path) -> None:
    history = {"band_gap": np.random.default_rng(0).normal(2, 0.5, (10, 5)), "tolerance": np.full((10, 5), 0.9)}
    plot_history(tmp_path / "history.png", history, OBJECTIVES, final_loss=np.array([0.1, np.nan, 0.0, 2.0, 1.0]))
    assert (tmp_path / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
