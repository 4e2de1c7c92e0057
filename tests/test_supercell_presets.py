"""Supercell presets: the 4×4×4 (320-atom) band-gap task, configured and run end to end on the whole cell."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest

from smoacs.physics.settings import PhysicsSettings
from smoacs.presets import PRESETS, build_config
from smoacs.runner import run


def test_4x4x4_preset_configuration() -> None:
    config = build_config("perovskite4x4x4-bandgap", 3.0)
    three = build_config("perovskite3x3x3-bandgap", 3.0)
    assert config.templates.kind == "perovskite" and config.templates.supercell == 4
    assert (config.candidates, config.batch_size) == (32, 16)  # mini-batches of 16 bound a step's memory
    assert config.predictors == three.predictors and config.objectives == three.objectives
    assert PRESETS["perovskite4x4x4-bandgap"].default_target == PRESETS["perovskite3x3x3-bandgap"].default_target


def test_4x4x4_run_checks_the_whole_320_atom_cell(tmp_path: Path) -> None:
    config = build_config("perovskite4x4x4-bandgap", 3.0, str(tmp_path / "run"))
    optimizer = replace(config.optimizer, steps=3, rebuild_every=2, copy_mutate_steps=())
    config = config.with_overrides(candidates=2, batch_size=2, optimizer=optimizer, oracles={}, device="cpu",
                                   physics=PhysicsSettings(potential="none"))  # fmt: skip
    result = run(config, progress=False)
    with open(result.out_dir / "result.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    for row in rows:
        assert row["n_atoms"] == "320" and row["template"].startswith("perovskite4x4x4-")
        # Neutrality is judged from every one of the 320 sites (an independent per-atom assignment), and the
        # pattern the optimiser used covers the whole cell too.
        assert len(row["pattern_oxidation_states"].split()) == 320
        if row["neutral_ok"] == "True":
            assert len(row["oxidation_states"].split()) == 320
        assert row["perovskite_ok"] in ("True", "False") and row["min_distance_ok"] in ("True", "False")
        # Whole-cell lengths: 4 × a unit cell of 3–7 Å (bounds scale with the supercell factor).
        assert all(12.0 * 0.5 < float(row[k]) < 28.0 * 1.5 for k in "abc")
        assert float(row["max_displacement"]) <= 0.0375 + 1e-6  # ±0.15 / 4 in fractional units of the supercell


@pytest.mark.parametrize("name", ["perovskite3x3x3-bandgap", "perovskite4x4x4-bandgap"])
def test_supercell_presets_reject_a_negative_target(name: str) -> None:
    from smoacs.errors import ConfigError

    with pytest.raises(ConfigError, match="band-gap target"):
        build_config(name, -1.0)
