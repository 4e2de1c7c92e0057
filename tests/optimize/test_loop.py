"""The optimisation loop on a cheap toy predictor: descent, NaN quarantine, copy-and-mutate, schedules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import ToyPredictor
from smoacs.design import DesignSpace
from smoacs.objectives import Above, Window
from smoacs.optimize import DesignOptimizer, OptimizerSettings
from smoacs.optimize.schedule import cosine_scale, linear_temperature, rebuild_steps
from smoacs.templates import perovskite_templates

TARGET = Window("band_gap", 1.6, margin=0.0, eval_margin=0.1)


def _optimizer(n: int, predictor: ToyPredictor, seed: int = 0, **settings: object) -> DesignOptimizer:
    space = DesignSpace(perovskite_templates(n, seed=seed), seed=seed)
    options = {"steps": 30, "copy_mutate_steps": (), "lr_lattice": 0.05, **settings}
    return DesignOptimizer(space, [predictor], [TARGET], OptimizerSettings(**options), seed=seed)


def test_loss_decreases(toy_predictor: ToyPredictor) -> None:
    optimizer = _optimizer(4, toy_predictor)
    initial = optimizer.space.lengths().detach().clone()
    result = optimizer.run()
    loss = result.history["loss"]
    assert loss.shape == (30, 4)
    assert np.all(loss[-1] < 0.5 * loss[0])
    assert np.all(np.isfinite(loss)) and not result.quarantine
    assert set(result.history) >= {"band_gap", "tolerance", "min_distance", "loss"}
    assert not torch.allclose(optimizer.space.lengths(), initial)
    np.testing.assert_array_equal(result.template_index, np.arange(4))
    np.testing.assert_array_equal(result.copied_from, -1)
    assert result.wall_time_s > 0


def test_nan_crystals_are_quarantined() -> None:
    predictor = ToyPredictor(nan_crystals=(1,), nan_grad_crystals=(2,))
    optimizer = _optimizer(4, predictor)
    initial = {name: p.detach().clone() for name, p in optimizer.space.named_parameters()}
    result = optimizer.run()
    assert set(result.quarantine) == {1, 2}
    assert result.quarantine[1] == "non-finite loss at step 0"
    assert result.quarantine[2].startswith("non-finite gradient of ") and result.quarantine[2].endswith("at step 0")
    assert optimizer.active.tolist() == [True, False, False, True]
    loss = result.history["loss"]
    assert np.all(np.isnan(loss[:, [1, 2]]))
    assert np.all(loss[-1, [0, 3]] < 0.5 * loss[0, [0, 3]]), "the other crystals still optimise"
    space = optimizer.space
    for c in (1, 2):
        assert torch.equal(space.length_raw[c], initial["length_raw"][c])
        rows = space.crystal_idx == c
        assert torch.equal(space.coord_raw[rows], initial["coord_raw"][rows])
        assert torch.equal(space.element_logits[rows], initial["element_logits"][rows])
    assert not torch.equal(space.length_raw[0], initial["length_raw"][0])


def test_copy_and_mutate_replaces_receivers_with_donor_geometry(toy_predictor: ToyPredictor) -> None:
    n = 8
    optimizer = _optimizer(n, toy_predictor, copy_mutate_steps=(5,), keep_probability=0.0, top_ratio=0.25)
    space = optimizer.space
    for record in optimizer.iterate():
        if record.step == 4:
            before = space.lengths().detach().clone()
        if record.step == 5:
            break
    donors = torch.argsort(record.loss, stable=True)[:2].tolist()
    receivers = sorted(set(range(n)) - set(donors))
    assert not record.solved.any()
    assert sorted(np.flatnonzero(optimizer.copied_from >= 0).tolist()) == receivers
    lengths = space.lengths().detach()
    for receiver in receivers:
        donor = int(optimizer.copied_from[receiver])
        assert donor in donors
        assert optimizer.template_index[receiver] == donor
        assert torch.allclose(lengths[receiver], lengths[donor], atol=0.05)
        assert not torch.allclose(before[receiver], before[donor], atol=0.05), "templates started apart"
        rows = space.crystal_idx == receiver
        assert space.element_logits[rows].abs().max() < 0.01, "composition search restarts"
        assert optimizer.adam.steps[receiver] == 0
    for donor in donors:
        assert optimizer.copied_from[donor] == -1 and optimizer.adam.steps[donor] == 6
    assert optimizer.n_mutated == len(receivers)


def test_copy_and_mutate_keeps_solved_and_quarantined(toy_predictor: ToyPredictor) -> None:
    predictor = ToyPredictor(nan_crystals=(0,))
    optimizer = _optimizer(6, predictor, copy_mutate_steps=(3,), keep_probability=0.0)
    result = optimizer.run()
    assert result.copied_from[0] == -1 and 0 not in result.copied_from
    assert result.n_mutated == 6 - 1 - 1  # five active crystals: one donor, four receivers


def test_rebuild_schedule(toy_predictor: ToyPredictor) -> None:
    optimizer = _optimizer(2, toy_predictor, steps=25, rebuild_every=10, copy_mutate_steps=(14,))
    optimizer.run()
    assert toy_predictor.n_rebuilds == len({0, 10, 20, 15}) == 4


def test_validation(toy_predictor: ToyPredictor) -> None:
    space = DesignSpace(perovskite_templates(1, seed=0))
    with pytest.raises(ValueError, match="objective"):
        DesignOptimizer(space, [toy_predictor], [])
    with pytest.raises(ValueError, match="steps"):
        OptimizerSettings(steps=0)
    with pytest.raises(ValueError, match="temperatures"):
        OptimizerSettings(temperature_end=0.0)
    with pytest.raises(ValueError, match="lr_coords"):
        OptimizerSettings(lr_coords=-1.0)


def test_min_distance_objective_pushes_atoms_apart(toy_predictor: ToyPredictor) -> None:
    space = DesignSpace(perovskite_templates(2, seed=0, length_range=(3.0, 3.0)), seed=0)
    objective = Above("min_distance", 2.5, margin=0.0)
    optimizer = DesignOptimizer(space, [toy_predictor], [objective], OptimizerSettings(steps=30, copy_mutate_steps=()))
    result = optimizer.run()
    distance = result.history["min_distance"]
    np.testing.assert_allclose(distance[0], 1.5, rtol=1e-5)  # B–X at a/2
    assert np.all(distance[-1] > distance[0] + 0.2)


def test_schedules() -> None:
    assert linear_temperature(0, 11, 1e-2, 1e-4) == 1e-2
    assert linear_temperature(10, 11, 1e-2, 1e-4) == pytest.approx(1e-4)
    assert linear_temperature(0, 1, 1.0, 0.5) == 0.5
    assert cosine_scale(0, 100, 0.05) == 1.0
    assert cosine_scale(50, 100, 0.05) == pytest.approx(0.525)
    assert cosine_scale(100, 100, 0.05) == pytest.approx(0.05)
    assert rebuild_steps(25, 10, (15, 30)) == {0, 10, 20, 15}


def test_diversity_rule_caps_copies_of_one_composition(toy_predictor: ToyPredictor) -> None:
    n, cap = 12, 2
    settings = {"keep_probability": 0.0, "top_ratio": 0.1, "mutate_composition": "copy", "lr_composition": 0.1}
    free = _optimizer(n, toy_predictor, **settings)
    capped = _optimizer(n, toy_predictor, max_composition_copies=cap, **settings)
    for optimizer in (free, capped):  # 10 steps without copy-and-mutate, then one round of it by hand
        for record in optimizer.iterate():
            if record.step == 9:
                break
        before = optimizer.space.composition_keys()
        optimizer._copy_and_mutate(record)
    donors = lambda opt: [int(d) for d in opt.copied_from if d >= 0]  # noqa: E731
    assert max(donors(free).count(d) for d in donors(free)) > cap, "without a cap one donor gives more copies"
    after = capped.space.composition_keys()
    for key in set(after):  # copies stop once a composition is held by `cap` candidates
        assert after.count(key) <= max(cap, before.count(key))
    for donor in set(donors(capped)):
        assert before.count(before[donor]) < cap
    n_kept = lambda opt: int((opt.copied_from < 0).sum())  # noqa: E731
    assert n_kept(capped) > n_kept(free), "receivers without an eligible donor keep their own state"


def test_diversity_rule_is_off_without_composition_copying(toy_predictor: ToyPredictor) -> None:
    settings = {"copy_mutate_steps": (5, 10), "keep_probability": 0.0, "mutate_composition": "restart", "steps": 12}
    plain = _optimizer(8, toy_predictor, **settings).run()
    capped = _optimizer(8, toy_predictor, max_composition_copies=1, **settings).run()
    np.testing.assert_array_equal(plain.history["loss"], capped.history["loss"])
    np.testing.assert_array_equal(plain.copied_from, capped.copied_from)
    with pytest.raises(ValueError, match="max_composition_copies"):
        OptimizerSettings(max_composition_copies=-1)


def test_composition_keys_ignore_site_order_within_a_sublattice() -> None:
    space = DesignSpace(perovskite_templates(2, seed=0), seed=0)
    keys = space.composition_keys()
    assert len(keys) == 2 and all(len(key) == 5 for key in keys)
    design = space.discretize()
    species = design.crystals.species_probs.argmax(dim=-1)
    x_sites = torch.nonzero((space.site_roles == 2) & (space.crystal_idx == 0)).flatten()
    mixed = species.clone()
    mixed[x_sites[0]] = species[x_sites[1]] if species[x_sites[0]] != species[x_sites[1]] else species[x_sites[0]]
    mixed[x_sites[1]] = species[x_sites[0]]
    space.set_composition(design.combo, mixed)
    assert space.composition_keys() == keys  # two X sites swapped: same composition
