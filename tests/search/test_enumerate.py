"""enumerate: the composition list under the masks, the too-large error, and the search of a mini-batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import ToyPredictor
from smoacs.chem.oxidation import allowed_elements
from smoacs.design import DesignSpace, SpaceSettings
from smoacs.errors import ConfigError
from smoacs.objectives import Window
from smoacs.search import BaselineSettings, plan_candidates, search_method
from smoacs.search.base import SearchSettings
from smoacs.search.enumerate import candidate_templates, composition_counts
from smoacs.search.proposals import Scorer
from smoacs.templates import perovskite_templates
from smoacs.templates.base import Template
from smoacs.templates.perovskite import PEROVSKITE_COMBOS


def start_species(templates: list[Template]) -> torch.Tensor:
    from smoacs.chem.elements import element_index

    return torch.tensor([element_index(s) for t in templates for s in t.species])


def _allowed(state: int) -> int:
    return int(allowed_elements(state, ionic=True).sum())


@pytest.mark.parametrize("anions", ["single", "mixed"])
def test_perovskite_composition_count_is_the_product_of_the_chemistry_masks(anions: str) -> None:
    expected = 0
    for a, b, x, *_ in PEROVSKITE_COMBOS:
        expected += _allowed(a) * _allowed(b) * _allowed(x) ** (1 if anions == "single" else 3)
    templates = candidate_templates(perovskite_templates(3, seed=0), SpaceSettings(), anions)
    assert len(templates) == expected
    assert len({t.name for t in templates}) == expected
    assert len(templates) == (1792 if anions == "single" else 28672)
    assert len({t.species for t in templates}) == expected  # no composition listed twice


def test_small_mask_lists_exactly_its_compositions() -> None:
    pair = Template("pair", np.full(3, 4.0), np.full(3, 90.0), np.array([[0.0, 0, 0], [0.5, 0.5, 0.5]]),
                    np.array([[1, -1]]), np.array([-1, -1]), coord_bound=0.1)  # fmt: skip
    templates = candidate_templates([pair], SpaceSettings(), "mixed")
    assert len(templates) == _allowed(1) * _allowed(-1)
    cations = np.nonzero(allowed_elements(1, ionic=True))[0]
    from smoacs.chem.elements import ELEMENTS

    assert {t.species[0] for t in templates} == {ELEMENTS[e] for e in cations}
    assert all(t.ox_combos.tolist() == [[1, -1]] for t in templates)


def test_candidate_templates_are_cubic_single_pattern_and_admissible() -> None:
    templates = candidate_templates(perovskite_templates(1, seed=5), SpaceSettings(), "single")
    assert all(np.allclose(t.lengths, t.lengths[0]) and t.n_combos == 1 for t in templates)
    space = DesignSpace(templates[::97])
    from smoacs.chem.elements import element_index

    species = torch.tensor([element_index(s) for t in space.templates for s in t.species])
    space.set_composition(torch.zeros(space.n_crystals, dtype=torch.long), species)  # raises if outside the masks


def test_a_space_too_large_to_enumerate_is_one_config_error() -> None:
    space = DesignSpace(perovskite_templates(1, seed=0, supercell=3))
    assert sum(composition_counts(space, "single").values()) > 10**60
    with pytest.raises(ConfigError, match=r"^enumerate: template perovskite3x3x3-0000 has .* compositions"):
        plan_candidates(SearchSettings("enumerate"), SpaceSettings(), perovskite_templates(1, 0, supercell=3))
    assert plan_candidates(SearchSettings("gradient"), SpaceSettings(), ["kept"]) == ["kept"]  # type: ignore[list-item]


def test_search_keeps_each_composition_and_relaxes_its_lattice() -> None:
    templates = candidate_templates(perovskite_templates(1, seed=0), SpaceSettings(), "single")[::300]
    space = DesignSpace(templates, seed=0)
    steps = []
    result = search_method("enumerate")(
        space, [ToyPredictor()], [Window("band_gap", 3.0, margin=0.0)], BaselineSettings(8, "single"), 0, [steps.append]
    )
    from smoacs.chem.elements import ELEMENTS

    symbols = [ELEMENTS[e] for e in space.discretize().crystals.hard_species().tolist()]
    assert symbols == [s for t in templates for s in t.species]
    assert result.timings["scan_points"] == 4 and result.timings["n_evaluations"] == 8 * len(templates)
    assert [record.step for record in steps] == [4, 5, 6, 7]  # the relaxation's steps follow the scan's
    assert result.provenance.history["loss"].shape == (4, len(templates))
    lengths = space.lengths().detach()
    assert (lengths >= space.length_low - 1e-4).all() and (lengths <= space.length_high + 1e-4).all()
    assert not torch.allclose(lengths, torch.as_tensor(np.stack([t.lengths for t in templates]), dtype=lengths.dtype))
    start = DesignSpace(templates, seed=0)
    start.set_composition(torch.zeros(len(templates), dtype=torch.long), start_species(templates))
    scorer = Scorer([ToyPredictor()], [Window("band_gap", 3.0, margin=0.0)], 3.0)
    before, after = scorer(start).loss.numpy(), scorer(space).loss.numpy()
    assert (after <= before + 1e-6).all() and after.mean() < 0.5 * before.mean()

def test_enumerate_refuses_templates_without_a_composition() -> None:
    space = DesignSpace(perovskite_templates(2, seed=0))
    with pytest.raises(ConfigError, match="enumerate searches the templates of its own candidate list"):
        search_method("enumerate")(space, [ToyPredictor()], [Window("band_gap", 3.0)], BaselineSettings(4), 0)


def test_a_budget_of_one_is_a_scan_alone() -> None:
    templates = candidate_templates(perovskite_templates(1, seed=0), SpaceSettings(), "single")[:3]
    space = DesignSpace(templates, seed=0)
    result = search_method("enumerate")(space, [ToyPredictor()], [Window("band_gap", 3.0)], BaselineSettings(1), 0)
    assert result.timings["n_evaluations"] == 3 and result.provenance.history["loss"].shape == (1, 3)
    np.testing.assert_allclose(space.lengths().detach().numpy(), 6.0, rtol=1e-3)  # the one scan point: mid-bounds
