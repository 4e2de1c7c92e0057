"""Sublattice limits in the design space: shared host/substituent slots, allowed elements, minority-fraction windows."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from smoacs.chem.elements import ELEMENTS, element_index
from smoacs.chem.oxidation import allowed_elements
from smoacs.design import DesignSpace, SpaceSettings
from smoacs.design.sublattices import (
    SublatticeLimits,
    check_group_names,
    count_window,
    parse_limits,
    rank_within,
    site_group_labels,
)
from smoacs.errors import ConfigError
from smoacs.objectives.terms import Window
from smoacs.optimize.loop import DesignOptimizer, OptimizerSettings
from smoacs.templates import perovskite_templates
from smoacs.templates.base import Template

ALLOY = {"A": SublatticeLimits(1), "B": SublatticeLimits(2, fraction=(0.25, 0.5)), "X": SublatticeLimits(1)}


def _space(limits: dict[str, SublatticeLimits], n: int = 3, supercell: int = 2, seed: int = 0) -> DesignSpace:
    return DesignSpace(perovskite_templates(n, seed=seed, supercell=supercell), SpaceSettings(sublattices=limits), seed=seed)


def _groups(space: DesignSpace, species: torch.Tensor) -> dict[tuple[int, str], Counter]:
    """(crystal, A/B/X) → element counts of a discrete species vector."""
    out: dict[tuple[int, str], Counter] = {}
    for i, (c, role, e) in enumerate(zip(space.crystal_idx.tolist(), space.site_roles.tolist(), species.tolist())):
        out.setdefault((c, "ABX"[role]), Counter())[ELEMENTS[e]] += 1
    return out


def _assert_neutral_and_admissible(space: DesignSpace) -> None:
    """Exact neutrality under the chosen pattern, and every element allowed at its site's oxidation state."""
    design = space.discretize()
    species = design.crystals.hard_species()
    charge = torch.zeros(space.n_crystals, dtype=torch.long).index_add_(0, space.crystal_idx, design.ox_states)
    assert torch.all(charge == 0)
    for e, ox in zip(species.tolist(), design.ox_states.tolist()):
        assert allowed_elements(ox, ionic=True)[e], (ELEMENTS[e], ox)


# ---- settings ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_species": 0}, "max_species must be ≥ 1"),
        ({"allowed": ("Pb", "Xx")}, "unknown element"),
        ({"allowed": ("Pb", "Pb")}, "listed twice"),
        ({"max_species": 2, "fraction": (0.3, 0.2)}, "0 ≤ min ≤ max ≤ 1"),
        ({"max_species": 2, "fraction": (0.6, 0.9)}, "min must be ≤ 0.5"),
        ({"max_species": 1, "fraction": (0.0, 0.2)}, "needs max_species ≥ 2"),
        ({"fraction": (0.0, 0.2)}, "needs max_species ≥ 2"),
        ({"max_species": 2, "allowed": ("Pb",), "fraction": (0.1, 0.2)}, "two allowed elements"),
    ],
)
def test_limits_reject_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SublatticeLimits(**kwargs)


def test_parse_limits_reads_cli_specs_and_keeps_the_base() -> None:
    base = {"X": SublatticeLimits(allowed=("Cl", "Br"))}
    limits = parse_limits(base, "A=1,B=2,X=2", "B=0.0:0.25,X=0.1:0.5", ["B=Pb, Sn"])
    assert limits["A"] == SublatticeLimits(1)
    assert limits["B"] == SublatticeLimits(2, ("Pb", "Sn"), (0.0, 0.25))
    assert limits["X"] == SublatticeLimits(2, ("Cl", "Br"), (0.1, 0.5))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("A=one",), "--max-species A=one: expected a whole number"),
        (("A",), "--max-species expects GROUP=VALUE"),
        (("A=1,A=2",), "site group A is given twice"),
        (("B=2", "B=0.1"), "--dopant-fraction B=0.1: expected MIN:MAX"),
        (("B=2", "B=a:b"), "expected MIN:MAX"),
        (("B=2", "B=0:inf"), "expected MIN:MAX"),
        ((None, "B=0:0.2"), "sublattice B: a fraction window needs max_species ≥ 2"),
        ((None, None, ["X"]), "--allowed-elements expects GROUP=El"),
        ((None, None, ["X=Qq"]), "sublattice X: allowed: unknown element"),
    ],
)
def test_parse_limits_errors_are_one_line(args: tuple, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_limits({}, *args)
    assert "\n" not in str(info.value)


def test_site_group_labels_and_name_check() -> None:
    perovskite = perovskite_templates(1, seed=0)[0]
    assert site_group_labels(perovskite) == ["A", "B", "X", "X", "X"]
    general = Template("zno", np.full(3, 4.0), np.full(3, 90.0), np.array([[0, 0, 0], [0.5, 0.5, 0.5]]),
                       np.array([[2, -2]]), np.array([-1, -1]), species=("Zn", "O"))  # fmt: skip
    assert site_group_labels(general) == ["Zn", "O"]
    check_group_names([perovskite, general], {"B": SublatticeLimits(1), "O": SublatticeLimits(1)})
    with pytest.raises(ConfigError, match="site group.*b that no template has; site groups of this run: A, B, O, X, Zn"):
        check_group_names([perovskite, general], {"b": SublatticeLimits(1)})


def test_count_window_rounds_inwards() -> None:
    low, high = count_window((0.1, 0.25), np.array([8, 27, 0]))
    assert low.tolist() == [1, 3, 0] and high.tolist() == [2, 6, 0]
    low, high = count_window(None, np.array([8]))
    assert (low.tolist(), high.tolist()) == ([0], [8])


def test_rank_within_groups() -> None:
    groups = torch.tensor([0, 0, 1, 0, 1, 1])
    score = torch.tensor([0.1, 0.9, 0.5, 0.5, 0.7, 0.1])
    candidate = torch.tensor([True, True, True, True, True, False])
    rank = rank_within(groups, score, candidate)
    assert rank[:5].tolist() == [2, 0, 1, 1, 0] and rank[5] > 5


# ---- the design space -------------------------------------------------------------------------------------------------
def test_default_space_is_unchanged_by_the_feature() -> None:
    plain = DesignSpace(perovskite_templates(3, seed=0, supercell=2), seed=4)
    empty = DesignSpace(perovskite_templates(3, seed=0, supercell=2), SpaceSettings(sublattices={}), seed=4)
    limited = _space(ALLOY, seed=0)
    limited_4 = DesignSpace(perovskite_templates(3, seed=0, supercell=2), SpaceSettings(sublattices=ALLOY), seed=4)
    assert plain.composition_parameters() == () and plain.CRYSTAL_FIELDS == DesignSpace.CRYSTAL_FIELDS
    for name, parameter in plain.named_parameters():
        torch.testing.assert_close(parameter, dict(empty.named_parameters())[name], rtol=0, atol=0)
        # limits add parameters after the others: the shared ones' random draws come from the same stream
        torch.testing.assert_close(parameter, dict(limited_4.named_parameters())[name], rtol=0, atol=0)
    assert limited.composition_parameters() == ("slot_logits", "slot_choice")
    soft = plain.realize(1e-2)
    torch.testing.assert_close(soft.crystals.species_probs, empty.realize(1e-2).crystals.species_probs, rtol=0, atol=0)
    assert soft.penalty is None


def test_shared_groups_share_one_distribution_and_stay_normalised() -> None:
    space = _space({"A": SublatticeLimits(1), "X": SublatticeLimits(1)})
    probs = space.realize(1e-2).crystals.species_probs
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(len(probs)))
    for c in range(space.n_crystals):
        for role in (0, 2):  # every A (X) site of a crystal has the same distribution
            rows = probs[(space.crystal_idx == c) & (space.site_roles == role)]
            torch.testing.assert_close(rows, rows[:1].expand_as(rows))
        b_sites = probs[(space.crystal_idx == c) & (space.site_roles == 1)]
        assert not torch.allclose(b_sites, b_sites[:1].expand_as(b_sites))  # B is unlimited: per-site choice


def test_discrete_cells_respect_limits_and_windows_by_construction() -> None:
    space = _space(ALLOY, n=6)
    with torch.no_grad():  # scramble every preference: the limits must hold whatever the parameters
        generator = torch.Generator().manual_seed(3)
        for parameter in space.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    species = space.discretize().crystals.hard_species()
    for (c, group), counts in _groups(space, species).items():
        assert len(counts) <= {"A": 1, "B": 2, "X": 1}[group]
        if group == "B":  # 8 B sites, window [0.25, 0.5] → 2 … 4 minority sites
            assert 2 <= 8 - max(counts.values()) <= 4, counts
    _assert_neutral_and_admissible(space)


def test_projection_moves_surplus_and_deficit_sites() -> None:
    space = _space({"B": SublatticeLimits(2, fraction=(0.25, 0.375))}, n=2)
    b_sites = torch.nonzero(space.site_roles == 1).flatten()
    with torch.no_grad():
        space.slot_logits.zero_()
        pb, ge = element_index("Pb"), element_index("Ge")
        space.slot_logits[:, 0, 0, pb] = 1.0
        space.slot_logits[0, 0, 1, ge] = 1.0
        space.slot_logits[1, 0, 1, pb] = 1.0  # crystal 1: the substituent slot holds the host's element
        space.slot_choice.zero_()
        space.slot_choice[b_sites, 1] = torch.linspace(1.0, 2.0, len(b_sites))  # every B site prefers slot 1 …
        space.slot_choice[b_sites[4:8], 0] = 3.0  # … but crystal 0's last four prefer slot 0: 4 Pb + 4 Ge
        space.combo_logits.zero_()
        space.combo_logits[:, 0] = 1.0  # A+ B2+ X−
    counts = _groups(space, space.discretize().crystals.hard_species())
    # crystal 0, surplus: 4 of 8 minority sites > ⌊0.375·8⌋ = 3; one Pb site joins the host Ge (tie: lighter element)
    assert counts[(0, "B")] == Counter({"Ge": 5, "Pb": 3})
    # crystal 1, deficit: every site on Pb (both slots hold Pb) → ⌈0.25·8⌉ = 2 sites on a new element
    assert sorted(counts[(1, "B")].values()) == [2, 6] and counts[(1, "B")]["Pb"] == 6
    _assert_neutral_and_admissible(space)


def test_allowed_elements_restrict_sites_and_drop_patterns() -> None:
    limits = {"X": SublatticeLimits(2, allowed=("Cl", "Br", "I"), fraction=(0.1, 0.5)), "B": SublatticeLimits(allowed=("Pb", "Ge"))}
    space = _space(limits)
    assert space.combo_valid[:, 0].all() and not space.combo_valid[:, 1].any()  # no halide is X²⁻
    species = space.discretize().crystals.hard_species()
    for (c, group), counts in _groups(space, species).items():
        if group == "X":
            assert set(counts) <= {"Cl", "Br", "I"} and 1 <= len(counts) <= 2
        if group == "B":
            assert set(counts) <= {"Pb", "Ge"}
    probs = space.realize(1e-2).crystals.species_probs
    x_sites = space.site_roles == 2
    outside = torch.ones(probs.shape[1], dtype=torch.bool)
    outside[[element_index(s) for s in ("Cl", "Br", "I")]] = False
    assert probs[x_sites][:, outside].abs().max() == 0  # masked exactly, at every temperature


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"X": SublatticeLimits(allowed=("Cs",))}, "allowed elements fit no oxidation pattern"),
        ({"B": SublatticeLimits(2, fraction=(0.4, 0.45))}, "sublattice B of template .* has 8 sites: no number"),
    ],
)
def test_infeasible_limits_are_config_errors(limits: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _space(limits)


def test_set_composition_with_limits_round_trips_and_checks() -> None:
    space = _space(ALLOY, n=2)
    choices = space.choices()
    species = torch.empty(len(space.crystal_idx), dtype=torch.long)
    role = space.site_roles
    species[role == 0] = element_index("Cs")
    species[role == 2] = element_index("I")
    b_sites = torch.nonzero(role == 1).flatten()
    species[b_sites] = element_index("Pb")
    species[b_sites[[0, 3, 8 + 1]]] = element_index("Ge")  # crystal 0: 2 Ge of 8 B, crystal 1: 1 Ge … too few
    patterns = torch.zeros(2, dtype=torch.long)
    assert choices.allowed_elements[torch.arange(len(species)), 0, species].all()
    with pytest.raises(ValueError, match="minority fraction outside its window"):
        space.set_composition(patterns, species)
    species[b_sites[8 + 2]] = element_index("Ge")
    space.set_composition(patterns, species)
    torch.testing.assert_close(space.discretize().crystals.hard_species(), species)
    species[b_sites[1]] = element_index("Cd")
    with pytest.raises(ValueError, match="more elements on sublattice B than its max_species"):
        space.set_composition(patterns, species)


def test_copy_crystals_carries_the_shared_choice_and_restarts_it() -> None:
    space = _space(ALLOY, n=3)
    with torch.no_grad():
        space.slot_logits.normal_(generator=torch.Generator().manual_seed(2))
    space.copy_crystals(torch.tensor([0]), torch.tensor([2]))
    torch.testing.assert_close(space.slot_logits[2], space.slot_logits[0])
    torch.testing.assert_close(space.discretize().crystals.hard_species()[space.crystal_idx == 2],
                               space.discretize().crystals.hard_species()[space.crystal_idx == 0])  # fmt: skip
    fresh = space.fresh_composition(torch.tensor([0]), torch.Generator().manual_seed(0))
    assert fresh["slot_logits"].shape == (1, *space.slot_logits.shape[1:])
    assert fresh["slot_choice"].shape == (int(space.n_atoms[0]), space.n_slots)
    assert fresh["slot_logits"].abs().max() < 0.01  # re-initialised at the logit noise


def test_penalty_pulls_the_soft_fraction_into_its_window() -> None:
    space = _space({"B": SublatticeLimits(2, fraction=(0.0, 0.25))}, n=2)
    b_sites = space.site_roles == 1
    with torch.no_grad():
        space.slot_choice[b_sites, 1] = 0.05  # soft fraction far above 0.25 at T = 1e-2
    soft = space.realize(1e-2)
    assert torch.all(soft.penalty > 1.0)
    soft.penalty.sum().backward()
    assert torch.all(space.slot_choice.grad[b_sites, 1] > 0)  # descent lowers the substituent preference
    with torch.no_grad():
        space.slot_choice[b_sites, 1] = -0.05
    assert torch.all(space.realize(1e-2).penalty == 0)


def test_optimisation_keeps_limits_on_the_discrete_cells(toy_predictor) -> None:  # noqa: ANN001
    """A short optimisation (2×2×2 cells, toy predictor, copy-and-mutate): limits, window and neutrality hold."""
    limits = {"A": SublatticeLimits(1), "B": SublatticeLimits(2, fraction=(0.125, 0.375)), "X": SublatticeLimits(1)}
    space = _space(limits, n=6)
    settings = OptimizerSettings(steps=24, copy_mutate_steps=(8, 16), rebuild_every=8, mutate_composition="restart")
    optimizer = DesignOptimizer(space, [toy_predictor], [Window("band_gap", 3.0, 0.05, 0.2)], settings, seed=0)
    start = space.slot_logits.detach().clone()
    result = optimizer.run()
    assert result.n_mutated > 0 and not result.quarantine
    assert not torch.equal(space.slot_logits.detach(), start)  # the optimiser moves the shared choice
    species = space.discretize().crystals.hard_species()
    for (c, group), counts in _groups(space, species).items():
        assert len(counts) <= {"A": 1, "B": 2, "X": 1}[group]
        if group == "B":
            assert 1 <= 8 - max(counts.values()) <= 3
    _assert_neutral_and_admissible(space)
