"""RowwiseAdam: equals torch.optim.Adam without resets; per-crystal resets and frozen crystals."""

from __future__ import annotations

import torch

from smoacs.optimize.adam import ParamGroup, RowwiseAdam

N_CRYSTALS = 4
LR = 0.05


def _problem(seed: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Per-crystal parameters (one row per crystal, and two rows per crystal) and quadratic-plus-sine targets."""
    generator = torch.Generator().manual_seed(seed)
    params = {
        "lattice": torch.randn(N_CRYSTALS, 3, generator=generator, dtype=torch.float64),
        "sites": torch.randn(2 * N_CRYSTALS, 5, generator=generator, dtype=torch.float64),
    }
    targets = {name: torch.randn(p.shape, generator=generator, dtype=torch.float64) for name, p in params.items()}
    return params, targets


OWNERS = {"lattice": torch.arange(N_CRYSTALS), "sites": torch.arange(N_CRYSTALS).repeat_interleave(2)}


def _loss(params: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    return sum(((p - targets[n]) ** 2 + torch.sin(3 * p)).sum() for n, p in params.items())


def _rowwise(params: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], RowwiseAdam]:
    leaves = {name: p.clone().requires_grad_() for name, p in params.items()}
    groups = [ParamGroup(name, leaf, OWNERS[name], LR) for name, leaf in leaves.items()]
    return leaves, RowwiseAdam(groups, N_CRYSTALS)


def _step(leaves: dict[str, torch.Tensor], adam: RowwiseAdam, targets: dict[str, torch.Tensor], active: torch.Tensor) -> None:
    adam.zero_grad()
    _loss(leaves, targets).backward()
    adam.step(1.0, active)


def test_matches_torch_adam() -> None:
    params, targets = _problem()
    leaves, adam = _rowwise(params)
    reference = {name: p.clone().requires_grad_() for name, p in params.items()}
    torch_adam = torch.optim.Adam(list(reference.values()), lr=LR, betas=(0.9, 0.999), eps=1e-8)
    everyone = torch.ones(N_CRYSTALS, dtype=torch.bool)
    for _ in range(100):
        _step(leaves, adam, targets, everyone)
        torch_adam.zero_grad()
        _loss(reference, targets).backward()
        torch_adam.step()
    for name in params:
        assert not torch.equal(leaves[name], params[name])
        torch.testing.assert_close(leaves[name].detach(), reference[name].detach(), rtol=0, atol=1e-10)


def test_lr_scale_multiplies_rate() -> None:
    params, targets = _problem(1)
    leaves, adam = _rowwise(params)
    adam.zero_grad()
    _loss(leaves, targets).backward()
    adam.step(0.5, torch.ones(N_CRYSTALS, dtype=torch.bool))
    # The first Adam step moves every coordinate by lr·scale·sign(grad) (up to ε).
    delta = (leaves["lattice"] - params["lattice"]).detach().abs()
    torch.testing.assert_close(delta, torch.full_like(delta, 0.5 * LR), rtol=1e-6, atol=0)


def test_reset_of_one_crystal_leaves_others_identical() -> None:
    params, targets = _problem(2)
    plain, adam_plain = _rowwise(params)
    reset, adam_reset = _rowwise(params)
    everyone = torch.ones(N_CRYSTALS, dtype=torch.bool)
    for step in range(30):
        _step(plain, adam_plain, targets, everyone)
        _step(reset, adam_reset, targets, everyone)
        if step == 9:
            adam_reset.reset(torch.tensor([2]))
            assert adam_reset.steps.tolist() == [10, 10, 0, 10]
            assert torch.all(adam_reset.exp_avg[1][4:6] == 0) and torch.all(adam_reset.exp_avg_sq[0][2] == 0)
    others = [0, 1, 3]
    site_rows = OWNERS["sites"] != 2
    assert torch.equal(reset["lattice"][others], plain["lattice"][others])
    assert torch.equal(reset["sites"][site_rows], plain["sites"][site_rows])
    assert not torch.equal(reset["lattice"][2], plain["lattice"][2])
    assert adam_reset.steps.tolist() == [30, 30, 20, 30]


def test_reset_crystal_restarts_like_a_fresh_adam() -> None:
    params, targets = _problem(3)
    leaves, adam = _rowwise(params)
    everyone = torch.ones(N_CRYSTALS, dtype=torch.bool)
    for _ in range(5):
        _step(leaves, adam, targets, everyone)
    adam.reset(torch.tensor([1]))
    before = leaves["lattice"].detach().clone()
    _step(leaves, adam, targets, everyone)
    # Bias correction with the crystal's own step count: its first step after the reset has size lr per coordinate.
    delta = (leaves["lattice"].detach() - before)[1].abs()
    torch.testing.assert_close(delta, torch.full_like(delta, LR), rtol=1e-6, atol=0)


def test_inactive_crystals_are_not_updated() -> None:
    params, targets = _problem(4)
    leaves, adam = _rowwise(params)
    active = torch.tensor([True, False, True, True])
    everyone = torch.ones(N_CRYSTALS, dtype=torch.bool)
    _step(leaves, adam, targets, everyone)
    frozen_lattice = leaves["lattice"][1].detach().clone()
    frozen_sites = leaves["sites"][2:4].detach().clone()
    moments = [m.clone() for m in adam.exp_avg]
    for _ in range(10):
        _step(leaves, adam, targets, active)
    assert torch.equal(leaves["lattice"][1], frozen_lattice)
    assert torch.equal(leaves["sites"][2:4], frozen_sites)
    assert torch.equal(adam.exp_avg[0][1], moments[0][1]) and torch.equal(adam.exp_avg[1][2:4], moments[1][2:4])
    assert adam.steps.tolist() == [11, 1, 11, 11]
    assert not torch.equal(leaves["lattice"][0], params["lattice"][0])


def test_missing_gradient_is_skipped() -> None:
    params, _ = _problem(5)
    leaves, adam = _rowwise(params)
    leaves["lattice"].sum().backward()  # "sites" gets no gradient
    adam.step(1.0, torch.ones(N_CRYSTALS, dtype=torch.bool))
    assert torch.equal(leaves["sites"], params["sites"])
    assert not torch.equal(leaves["lattice"], params["lattice"])
