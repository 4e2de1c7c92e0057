"""RunDirectory: one layout, appending mini-batches, reading structures and finished batches back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import ToyPredictor
from smoacs.design import DesignSpace, Provenance
from smoacs.errors import ConfigError
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


# ---- safety rules (issue 9) -----------------------------------------------------------------------------------------
def test_prepare_refuses_a_directory_holding_another_run(tmp_path: Path) -> None:
    import pytest

    from smoacs.errors import ConfigError

    out = tmp_path / "run"
    RunDirectory(out).prepare("new")  # a fresh (or empty) directory is fine
    (out / "notes.txt").write_text("mine")  # files that are not run files do not count
    RunDirectory(out).prepare("new")
    (out / RESULT_CSV).write_text("id\n")
    with pytest.raises(ConfigError, match=r"already holds a run \(result.csv\); .*--resume .*--overwrite"):
        RunDirectory(out).prepare("new")


def test_overwrite_clears_only_the_old_run_files(tmp_path: Path) -> None:
    out = tmp_path / "run"
    directory = RunDirectory(out).create()
    directory.append(_batch(0, 0).rows, _batch(0, 0).structures)
    directory.write_meta({"config": {}})
    (out / "notes.txt").write_text("mine")
    assert set(directory.run_files()) == {RUN_JSON, RESULT_CSV, "structures", "poscar"}
    RunDirectory(out).prepare("overwrite")
    assert RunDirectory(out).run_files() == [] and (out / "notes.txt").read_text() == "mine"


def test_prepare_errors_for_files_and_unwritable_directories(tmp_path: Path) -> None:
    import os

    import pytest

    from smoacs.errors import ConfigError

    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        RunDirectory(tmp_path / "file").prepare("new")
    with pytest.raises(ConfigError, match="cannot write to output directory"):
        RunDirectory(tmp_path / "file" / "below").prepare("new")  # a file in the way of mkdir
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permissions: the mkdir case above covers the error path
            return
        with pytest.raises(ConfigError, match="cannot write to output directory"):
            RunDirectory(locked / "run").prepare("new")
    finally:
        locked.chmod(0o700)


def test_unique_path_counts_up_past_existing_runs(tmp_path: Path) -> None:
    from smoacs.io.rundir import unique_path

    base = tmp_path / "runs" / "pbg-2.5-s0"
    assert unique_path(base) == base
    RunDirectory(base).write_meta({"config": {}})
    assert unique_path(base) == base.with_name("pbg-2.5-s0-2")
    RunDirectory(base.with_name("pbg-2.5-s0-2")).write_meta({"config": {}})
    base.with_name("pbg-2.5-s0-3").mkdir()  # an empty directory holds no run: used
    assert unique_path(base) == base.with_name("pbg-2.5-s0-3")


def _finished(tmp_path: Path) -> RunDirectory:
    directory = RunDirectory(tmp_path / "run")
    batch = _batch(0, 0)
    directory.append(batch.rows, batch.structures)
    directory.write_npz(batch.arrays)
    directory.run_json.write_text('{"config": {}}')
    return directory


def test_a_truncated_result_npz_is_one_config_error(tmp_path: Path) -> None:
    directory = _finished(tmp_path)
    data = directory.result_npz.read_bytes()
    for content in (data[: len(data) // 2], b"", b"not a zip file"):
        directory.result_npz.write_bytes(content)
        for read in (directory.read_run, lambda: directory.read_finished([["c00000"]], {"config": {}})):
            with pytest.raises(ConfigError, match="result.npz is unreadable") as info:
                read()
            assert "\n" not in str(info.value)


def test_a_truncated_or_empty_result_csv_is_one_config_error(tmp_path: Path) -> None:
    directory = _finished(tmp_path)
    text = directory.result_csv.read_text()
    directory.result_csv.write_text(text[: len(text) - 40])  # the last row loses its last cells
    with pytest.raises(ConfigError, match=r"result.csv line 4 has \d+ cells, the header \d+ \(truncated or edited\?\)"):
        directory.read_rows()
    directory.result_csv.write_text("")
    with pytest.raises(ConfigError, match="result.csv is empty"):
        directory.read_rows()
    directory.result_csv.write_text(text)
    assert [row["id"] for row in directory.read_rows()] == ["c00000", "c00001", "c00002"]
