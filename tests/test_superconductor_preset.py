"""The superconductor-tc presets: configuration, test-split templates, shipped Tc models, and a tiny run."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from smoacs.design import DesignSpace
from smoacs.errors import ConfigError
from smoacs.predictors import load_predictor, predictor_info
from smoacs.presets import TC_ORACLE, TC_PREDICTOR, build_config
from smoacs.runner import build_template_set, run


def test_config_and_templates() -> None:
    config = build_config("superconductor-tc", out="x").validate()
    assert config.target == 5.0 and config.predictors == {"tc": TC_PREDICTOR} and config.judge == {"tc": TC_ORACLE}
    assert {o.key for o in config.objectives} == {"tc", "min_distance"}
    templates, skipped = build_template_set(config)
    # The test split (105): most are intermetallics without a neutral pattern of super-common oxidation states; those
    # are skipped with a reason and the usable ones are cycled over the 105 candidates.
    distinct = {t.name for t in templates}
    assert len(templates) == 105 and len(distinct) + len(skipped) == 105 and len(distinct) >= 10
    assert all("neutral" in s.reason for s in skipped)
    assert all(t.name.startswith("supercon-JVASP-") for t in templates)
    DesignSpace(templates, config.space, seed=0)  # every template fits the space (one cell has a 28.9° angle)
    stable = build_config("superconductor-tc-stable", 3.0, "x").validate()
    assert {o.key for o in stable.objectives} == {"tc", "min_distance", "formation_energy"}
    with pytest.raises(ConfigError, match="Tc threshold"):
        build_config("superconductor-tc", -1.0)


def test_shipped_tc_models() -> None:
    for name in (TC_PREDICTOR, TC_ORACLE):
        info = predictor_info(name)
        assert info.property == "tc" and info.unit == "K" and "test MAE" in info.description
        assert load_predictor(name).info.name == name


def test_tiny_run(tmp_path: Path) -> None:
    config = build_config("superconductor-tc", out=str(tmp_path / "tc"))
    optimizer = replace(config.optimizer, steps=6, copy_mutate_steps=(3,), rebuild_every=3)
    config = config.with_overrides(candidates=6, batch_size=6, device="cpu", optimizer=optimizer)
    result = run(config, progress=False)
    assert len(result.rows) == 6 and not result.failures
    row = result.rows[0]
    assert {"tc", "tc_judge", "tc_ok", "neutral_ok", "min_distance_ok"} <= set(row)
    assert all(row["neutral_ok"] for row in result.rows)
    assert all(bool(r["tc_ok"]) == (r["tc"] > 5.0) for r in result.rows)


def test_tiny_run_through_crystalformer(tmp_path: Path) -> None:
    """Crystalformer as the optimised predictor (no neighbour list, chunked image sums) runs end to end."""
    config = build_config("superconductor-tc", out=str(tmp_path / "cf"))
    optimizer = replace(config.optimizer, steps=4, copy_mutate_steps=(), rebuild_every=2)
    config = config.with_overrides(candidates=3, batch_size=3, device="cpu", optimizer=optimizer,
                                   predictors={"tc": TC_ORACLE}, judge={"tc": TC_PREDICTOR})  # fmt: skip
    result = run(config, progress=False)
    assert len(result.rows) == 3 and not result.failures
    assert all(math.isfinite(r["tc"]) and math.isfinite(r["tc_judge"]) for r in result.rows)
