"""random, tpe and ga: runs on a tiny problem, deterministic for a seed, within masks and bounds and budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import ToyPredictor
from smoacs.design import DesignSpace
from smoacs.objectives import Window
from smoacs.search import METHODS, BaselineSettings
from smoacs.search.proposals import Scorer
from smoacs.templates import perovskite_templates

BASELINES = ("random", "tpe", "ga")


def _run(method: str, seed: int = 0, budget: int = 6, anions: str = "mixed", calls: list | None = None):  # noqa: ANN202
    space = DesignSpace(perovskite_templates(5, seed=2), seed=0)
    objectives = [Window("band_gap", 4.0, margin=0.05)]
    callbacks = [calls.append] if calls is not None else []
    result = METHODS[method](space, [ToyPredictor()], objectives, BaselineSettings(budget, anions), seed, callbacks)
    return space, result, objectives


@pytest.mark.parametrize("method", BASELINES)
def test_runs_within_budget_and_ends_in_each_candidates_best(method: str) -> None:
    calls: list = []
    space, result, objectives = _run(method, calls=calls)
    assert result.timings["n_evaluations"] == 6 * 5 and result.timings["evaluations_per_candidate"] == 6
    assert len(calls) == 6 and [record.step for record in calls] == list(range(6))
    loss = result.provenance.history["loss"]
    assert loss.shape == (6, 5)
    assert (np.diff(loss, axis=0) <= 0).all()  # best so far never gets worse
    final = Scorer([ToyPredictor()], objectives, 3.0)(space).loss.numpy()
    np.testing.assert_allclose(final, loss[-1], rtol=1e-5)  # the space holds the best proposal
    np.testing.assert_array_equal(result.provenance.template_index, np.arange(5))


@pytest.mark.parametrize("method", BASELINES)
def test_deterministic_for_a_seed_and_seed_dependent(method: str) -> None:
    first, _, _ = _run(method, seed=3)
    again, _, _ = _run(method, seed=3)
    other, _, _ = _run(method, seed=4)
    for name in ("length_raw", "coord_raw", "element_logits", "combo_logits"):
        torch.testing.assert_close(getattr(first, name), getattr(again, name))
    assert not torch.equal(first.discretize().crystals.lattice, other.discretize().crystals.lattice)


@pytest.mark.parametrize("method", BASELINES)
@pytest.mark.parametrize("anions", ["mixed", "single"])
def test_final_state_within_masks_and_bounds(method: str, anions: str) -> None:
    space, _, _ = _run(method, anions=anions)
    design = space.discretize()
    rows = torch.arange(len(space.crystal_idx))
    species = design.crystals.hard_species()
    assert space.choices().allowed_elements[rows, design.combo[space.crystal_idx], species].all()
    lengths = space.lengths().detach()
    assert (lengths >= space.length_low - 1e-4).all() and (lengths <= space.length_high + 1e-4).all()
    assert ((space.frac_coords().detach() - space.frac0).abs() <= space.coord_bound[:, None] + 1e-6).all()
    if anions == "single":
        x_sites = species.view(5, 5)[:, 2:]
        assert (x_sites == x_sites[:, :1]).all()



def test_a_baseline_without_its_library_is_a_one_line_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    import smoacs.search as search_module
    from smoacs.errors import ConfigError
    from smoacs.optimize.loop import OptimizerSettings
    from smoacs.search.base import SearchSettings

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pymoo" else real(name, *a))
    with pytest.raises(ConfigError, match=r"needs pymoo.*smoacs\[baselines\]"):
        search_module.check_settings(SearchSettings(method="ga"), OptimizerSettings())
    search_module.check_settings(SearchSettings(method="random"), OptimizerSettings())  # needs nothing extra
