"""The search protocol: the method table, the gradient method, and the config's search section."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import ToyPredictor
from smoacs.config import config_from_dict
from smoacs.configfile import dump_config
from smoacs.design import DesignSpace, Provenance
from smoacs.errors import ConfigError
from smoacs.objectives import Window
from smoacs.optimize import OptimizerSettings
from smoacs.search import METHODS, SearchResult, SearchSettings, search_method
from smoacs.templates import perovskite_templates
from smoacs.physics.settings import PhysicsSettings


def test_gradient_method_searches_in_place_and_reports_provenance() -> None:
    space = DesignSpace(perovskite_templates(4, seed=0), seed=0)
    before = space.length_raw.detach().clone()
    steps = []
    result = search_method("gradient")(
        space, [ToyPredictor("band_gap")], [Window("band_gap", 2.0)], OptimizerSettings(steps=6), 0, [steps.append]
    )
    assert isinstance(result, SearchResult) and isinstance(result.provenance, Provenance)
    assert len(steps) == 6
    assert result.provenance.history["loss"].shape == (6, 4)
    np.testing.assert_array_equal(result.provenance.template_index, np.arange(4))
    assert set(result.timings) == {"optimize_s", "predictor_s", "rebuild_s", "n_mutated"}
    assert not np.allclose(space.length_raw.detach().numpy(), before.numpy())


def test_method_table_and_unknown_method() -> None:
    assert METHODS["gradient"] is search_method("gradient")
    with pytest.raises(ConfigError, match="unknown search method 'nope'; available: enumerate, ga, gradient, random, tpe"):
        search_method("nope")


BASE = {"predictors": {"band_gap": "cgcnn-band-gap"}, "objectives": [{"kind": "window", "property": "band_gap", "target": 2.0}]}


def test_config_search_section_defaults_round_trips_and_dumps() -> None:
    config = config_from_dict(BASE)
    assert config.search == SearchSettings("gradient")
    assert config.to_dict()["search"] == {"method": "gradient", "budget": None, "anions": "auto"}
    assert config_from_dict(config.to_dict()) == config
    assert "search:\n  method: gradient\n  budget: null\n  anions: auto" in dump_config(config)
    with pytest.raises(ConfigError, match="unknown search method"):
        config_from_dict({**BASE, "search": {"method": "bayes"}})
    with pytest.raises(ConfigError, match="search.steps: unknown key"):
        config_from_dict({**BASE, "search": {"steps": 3}})


def test_run_uses_the_configured_search_method(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    from smoacs.presets import build_config
    from smoacs.runner import run

    seeds = []

    def unchanged(space, predictors, objectives, settings, seed, callbacks=(), geometry=None):  # noqa: ANN001, ANN202, ARG001
        seeds.append(seed)
        return SearchResult(Provenance.untouched(space.n_crystals), {"search_s": 0.0})

    monkeypatch.setitem(METHODS, "unchanged", unchanged)
    config = build_config("perovskite-bandgap", 2.5, str(tmp_path / "run")).with_overrides(
        candidates=4, batch_size=2, search=SearchSettings("unchanged"), judge={}, physics=PhysicsSettings("none")
    )
    result = run(config, progress=False)
    assert seeds == [config.seed, config.seed + 1]
    assert [row["id"] for row in result.rows] == ["c00000", "c00001", "c00002", "c00003"]
    assert all(row["copied_from"] == "" and row["template"] for row in result.rows)
    assert (tmp_path / "run" / "result.csv").is_file() and not (tmp_path / "run" / "history.png").exists()


def test_search_section_in_toml_and_yaml_files(tmp_path) -> None:  # noqa: ANN001
    from smoacs.configfile import load_config

    toml = tmp_path / "run.toml"
    toml.write_text('[predictors]\nband_gap = "cgcnn-band-gap"\n\n[[objectives]]\nkind = "window"\n'
                    'property = "band_gap"\ntarget = 2.0\n\n[search]\nmethod = "gradient"\n')  # fmt: skip
    assert load_config(toml).search.method == "gradient"
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text(dump_config(config_from_dict(BASE)))
    assert load_config(yaml_file) == config_from_dict(BASE)
