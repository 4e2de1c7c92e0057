"""A run's memory estimate, and the up-front refusal of a run that cannot fit (instead of an OOM kill part-way)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from smoacs import resources
from smoacs.cli import main
from smoacs.config import RunConfig
from smoacs.errors import ConfigError
from smoacs.presets import build_config


def _config(preset: str, potential: str = "none", **changes: object) -> RunConfig:
    config = build_config(preset)
    return replace(config, physics=replace(config.physics, potential=potential), **changes)


def test_memory_estimate_grows_with_atoms_and_candidates() -> None:
    small = resources.estimate_memory_gb(_config("perovskite-bandgap", candidates=32, batch_size=32))
    many = resources.estimate_memory_gb(_config("perovskite-bandgap"))
    supercell = resources.estimate_memory_gb(_config("perovskite3x3x3-bandgap"))
    physics = resources.estimate_memory_gb(_config("perovskite-bandgap", "chgnet", candidates=32, batch_size=32))
    assert small < many < supercell and physics == pytest.approx(small + resources.POTENTIAL_MEMORY_GB)


def test_atoms_per_cell() -> None:
    assert resources.atoms_per_cell(build_config("perovskite-bandgap")) == 5
    assert resources.atoms_per_cell(build_config("perovskite3x3x3-bandgap")) == 135
    assert resources.atoms_per_cell(build_config("wide-bandgap")) == 10  # library templates: their max_atoms


def test_a_run_that_cannot_fit_is_refused_with_the_settings_to_lower() -> None:
    config = build_config("perovskite-bandgap")
    resources.check_memory(config, available_gb=8.0)  # ≈1 GB: fits
    with pytest.raises(ConfigError, match=r"needs ≈\d+ GB \(256 candidates per mini-batch × 5 atoms per cell\), "
                                          r"0\.5 GB are available: lower batch_size"):
        resources.check_memory(config, available_gb=0.5)


def test_cli_refuses_a_huge_supercell_before_writing_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "huge.yaml"
    data = build_config("perovskite-bandgap").to_dict()
    data["templates"]["supercell"] = 50
    config.write_text(yaml.safe_dump(data))
    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "625000 atoms per cell" in err[0] and "templates.supercell" in err[0], err
    assert not out.exists()
