"""The general-crystal presets (wide-bandgap, bandgap-formation): configuration and a tiny end-to-end run each."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from smoacs.errors import ConfigError
from smoacs.presets import PRESETS, build_config
from smoacs.runner import build_template_set, run


def test_configs() -> None:
    wide = build_config("wide-bandgap", out="x").validate()
    assert wide.target == 4.0 and wide.templates.kind == "prototypes" and wide.templates.max_atoms == 10
    assert {o.key for o in wide.objectives} == {"band_gap", "min_distance"}
    assert wide.judge == {"band_gap": "megnet-mf-band-gap:fidelity=pbe"}
    both = build_config("bandgap-formation", 2.5, "x").validate()
    assert {o.key for o in both.objectives} == {"band_gap", "formation_energy", "min_distance"}
    assert set(both.judge) == {"band_gap", "formation_energy"}
    assert both.space.relative_length_bounds is not None and both.space.default_coord_bound is not None
    with pytest.raises(ConfigError):
        build_config("wide-bandgap", -1.0)
    assert {"wide-bandgap", "bandgap-formation"} <= set(PRESETS)


def test_templates_cycle_deterministically() -> None:
    config = build_config("wide-bandgap", out="x").with_overrides(candidates=200)
    templates, skipped = build_template_set(config)
    names = [t.name for t in templates]
    assert len(names) == 200 and names[:88] == sorted(names[:88]) and names[88:176] == names[:88]
    assert skipped and all(s.reason for s in skipped)
    assert names == [t.name for t in build_template_set(config)[0]]


def test_dataset_kinds() -> None:
    base = build_config("wide-bandgap", out="x")
    for kind in ("perov5", "supercon"):
        config = base.with_overrides(candidates=6, templates=replace(base.templates, kind=kind)).validate()
        templates, _ = build_template_set(config)
        assert len(templates) == 6 and all(t.name.startswith(kind) for t in templates)
    with pytest.raises(ConfigError, match="kind"):
        base.with_overrides(templates=replace(base.templates, kind="nope")).validate()
    with pytest.raises(ConfigError, match="path"):
        base.with_overrides(templates=replace(base.templates, kind="files")).validate()


@pytest.mark.parametrize("preset", ["wide-bandgap", "bandgap-formation"])
def test_tiny_run(preset: str, tmp_path: Path) -> None:
    config = build_config(preset, out=str(tmp_path / preset))
    optimizer = replace(config.optimizer, steps=10, copy_mutate_steps=(5,), rebuild_every=5)
    config = config.with_overrides(candidates=8, batch_size=8, device="cpu", optimizer=optimizer)
    result = run(config, progress=False)
    assert len(result.rows) == 8 and not result.failures
    assert "perovskite_ok" not in result.rows[0] and "tolerance_ok" not in result.rows[0]
    assert all(row["neutral_ok"] for row in result.rows)
    meta = json.loads((tmp_path / preset / "run.json").read_text())
    assert meta["skipped_templates"] and {"name", "reason"} == set(meta["skipped_templates"][0])
