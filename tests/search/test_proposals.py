"""Genes decoded within the design space's masks and bounds; batched scoring; the best-so-far record."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import ToyPredictor
from smoacs.design import DesignSpace, SpaceSettings
from smoacs.objectives import Window
from smoacs.search.proposals import BestSoFar, Scorer, Scores, decode, n_genes, pick
from smoacs.templates import perovskite_templates
from smoacs.templates.base import Template


def _genes(space: DesignSpace, seed: int = 0) -> torch.Tensor:
    return torch.rand(space.n_crystals, n_genes(space), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_pick_takes_the_floor_u_n_th_allowed_entry() -> None:
    mask = torch.tensor([[False, True, False, True, True], [True, False, False, False, False]])
    assert pick(mask, torch.tensor([0.0, 0.99])).tolist() == [1, 0]
    assert pick(mask, torch.tensor([0.34, 0.5])).tolist() == [3, 0]
    assert pick(mask, torch.tensor([0.999999, 0.0])).tolist() == [4, 0]


@pytest.mark.parametrize("anions", ["mixed", "single"])
def test_decoded_proposals_respect_masks_and_bounds(anions: str) -> None:
    space = DesignSpace(perovskite_templates(32, seed=1), seed=0)
    proposal = decode(space, _genes(space), anions)
    choices = space.choices()
    rows = torch.arange(len(space.crystal_idx))
    assert choices.valid_patterns[torch.arange(32), proposal.patterns].all()
    assert choices.allowed_elements[rows, proposal.patterns[space.crystal_idx], proposal.species].all()
    proposal.apply(space)  # set_composition / set_geometry accept it (they raise on inadmissible choices)
    lengths = space.lengths().detach()
    assert (lengths >= space.length_low - 1e-4).all() and (lengths <= space.length_high + 1e-4).all()
    displacement = (space.frac_coords().detach() - space.frac0).abs()
    assert (displacement <= space.coord_bound[:, None] + 1e-6).all()
    design = space.discretize()
    assert torch.equal(design.crystals.hard_species(), proposal.species)
    x_sites = proposal.species.view(32, 5)[:, 2:]
    tied = (x_sites == x_sites[:, :1]).all(dim=1)
    if anions == "single":
        assert tied.all()
    else:
        assert not tied.all()  # 32 random draws of three X sites: some differ


def test_unbounded_sites_and_free_angles_stay_within_their_ranges() -> None:
    template = Template("pair", np.array([4.0, 4.5, 5.0]), np.array([90.0, 95.0, 100.0]),
                        np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]), np.array([[1, -1], [2, -2]]),
                        np.array([-1, -1]), coord_bound=None, free_angles=True)  # fmt: skip
    space = DesignSpace([template] * 8, SpaceSettings(relative_angle_bounds=10.0))
    decode(space, _genes(space, 3)).apply(space)
    angles = space.angles().detach()
    assert (angles >= space.angle_low - 1e-3).all() and (angles <= space.angle_high + 1e-3).all()
    assert not torch.allclose(angles, space.angles0)
    assert ((space.frac_coords().detach() - space.frac0).abs() <= 0.5 + 1e-6).all()


def test_scorer_counts_one_evaluation_per_candidate_and_the_loss_is_the_objectives() -> None:
    space = DesignSpace(perovskite_templates(6, seed=0), seed=0)
    decode(space, _genes(space)).apply(space)
    objective = Window("band_gap", 3.0, margin=0.0)
    scorer = Scorer([ToyPredictor()], [objective], cutoff=3.0)
    scores = scorer(space)
    assert scorer.n_evaluations == 6 and scores.loss.shape == (6,)
    expected = objective.loss({"band_gap": ToyPredictor()(space.discretize().crystals)})
    np.testing.assert_allclose(scores.loss.numpy(), expected.double().numpy(), rtol=1e-6)
    assert {"band_gap", "tolerance", "min_distance"} <= set(scores.values)


def test_best_so_far_keeps_strict_improvements_only() -> None:
    best = BestSoFar(3, 2)
    first = torch.tensor([[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]], dtype=torch.float64)
    best.update(first, Scores(torch.tensor([1.0, 2.0, float("inf")], dtype=torch.float64), {"x": torch.tensor([1.0, 2.0, 3.0])}))
    second = first + 0.5
    better = best.update(second, Scores(torch.tensor([1.0, 0.5, 4.0], dtype=torch.float64), {"x": torch.tensor([9.0, 8.0, 7.0])}))
    assert better.tolist() == [False, True, True]
    assert best.loss.tolist() == [1.0, 0.5, 4.0]
    torch.testing.assert_close(best.genes, torch.stack([first[0], second[1], second[2]]))
    assert best.values["x"].tolist() == [1.0, 8.0, 7.0]
    assert np.stack(best.history["loss"]).shape == (2, 3)


def test_free_angles_never_make_an_impossible_cell() -> None:
    from smoacs.search.proposals import valid_cell

    assert valid_cell(torch.tensor([[90.0, 90.0, 90.0], [30.0, 30.0, 150.0], [60.0, 60.0, 60.0]])).tolist() == [
        True, False, True]  # fmt: skip
    template = Template("pair", np.array([4.0, 4.5, 5.0]), np.array([90.0, 90.0, 90.0]),
                        np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]), np.array([[1, -1]]), np.array([-1, -1]),
                        coord_bound=0.25, free_angles=True)  # fmt: skip
    space = DesignSpace([template] * 64, SpaceSettings(angle_bounds=(30.0, 150.0)))
    proposal = decode(space, _genes(space, 5))
    volumes = torch.linalg.det(proposal.lattice).abs()
    from smoacs.crystal.lattice import lattice_to_parameters

    lengths, angles = lattice_to_parameters(proposal.lattice)
    assert valid_cell(angles, 0.2499).all() and (volumes >= 0.49 * lengths.prod(-1)).all()
