"""Relaxation check with CHGNet: columns, volume change sign, failures reported, configuration errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

from smoacs.errors import ConfigError
from smoacs.evaluate.relax import check_relaxer, relax_successes
from smoacs.evaluate.summary import summarize
from smoacs.objectives import Above, Below
from smoacs.predictors import load_predictor

FRAC = [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]]


def _rows(n: int) -> list[dict]:
    return [{"id": f"c{i}", "success": True, "tolerance": 1.0, "formula": "SrTiO3"} for i in range(n)]


def test_strained_srtio3_shrinks_and_is_rechecked(tmp_path: Path) -> None:
    strained = Structure(Lattice.cubic(4.3), ["Sr", "Ti", "O", "O", "O"], FRAC)
    rows = _rows(1)
    predictors = [load_predictor("cgcnn-formation-energy")]
    relax_successes(rows, [strained], predictors, [Below("formation_energy", -0.5), Above("min_distance", 0.5)], tmp_path, steps=60)
    row = rows[0]
    assert row["relax_error"] == ""
    assert row["volume_change"] < -0.1  # CHGNet's SrTiO3 lattice is ≈ 3.9 Å, far below 4.3 Å
    assert row["structure_survived"] is True
    assert row["relaxed_formation_energy"] < -0.5 and row["relaxed_success"] is True
    assert (tmp_path / "relaxed" / "c0.cif").is_file()
    summary = summarize(rows, [])
    assert summary["relaxed_success_rate"] == 1.0 and summary["median_abs_volume_change"] > 0.1


def test_failed_relaxation_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import smoacs.evaluate.relax as relax

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("diverged")

    monkeypatch.setattr(relax, "_relax_one", boom)
    rows = _rows(2)
    rows[1]["success"] = False
    structure = Structure(Lattice.cubic(3.9), ["Sr", "Ti", "O", "O", "O"], FRAC)
    relax_successes(rows, [structure, structure], [load_predictor("cgcnn-formation-energy")], [], tmp_path)
    assert rows[0]["relax_error"] == "RuntimeError: diverged" and rows[0]["relaxed_success"] is False
    assert rows[1]["relax_error"] == "" and rows[1]["relaxed_success"] is False
    assert summarize(rows, [])["n_relax_errors"] == 1


def test_unknown_relaxer() -> None:
    with pytest.raises(ConfigError, match="allowed: chgnet"):
        check_relaxer("mace")
    check_relaxer(None)
