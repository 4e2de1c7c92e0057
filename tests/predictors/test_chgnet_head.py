"""CHGNet head: pooling, configuration checks, gradients (finite differences in float64), soft species, supercell
invariance, and the save → load round trip through the training architecture."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from smoacs.crystal import CrystalBatch
from smoacs.errors import PredictorError
from smoacs.predictors.base import Predictor, PredictorInfo

from smoacs.predictors.chgnet_head import (  # noqa: E402
    CHGNetGatedKRR,
    CHGNetHead,
    CHGNetKRR,
    CHGNetHeadPredictor,
    HeadCheckpoint,
    HeadConfig,
    pool_atoms,
)

INFO = PredictorInfo("test-head", "tc", "K", "none", "test")


def _structures() -> list[Structure]:
    return [
        Structure(Lattice.cubic(3.3), ["Nb", "N"], [[0, 0, 0], [0.5, 0.52, 0.5]]),
        Structure(Lattice.hexagonal(3.08, 3.52), ["Mg", "B", "B"], [[0, 0, 0], [1 / 3, 2 / 3, 0.5], [2 / 3, 1 / 3, 0.47]]),
    ]


def _checkpoint(config: HeadConfig, seed: int = 0) -> HeadCheckpoint:
    """A randomly initialised head with non-trivial standardisation statistics (no training needed for these tests)."""
    torch.manual_seed(seed)
    head = CHGNetHead(config)
    head.norm.running_mean.normal_()
    head.norm.running_var.uniform_(0.5, 2.0)
    return HeadCheckpoint(config, head.state_dict(), target_mean=3.5, target_std=4.7)


def _krr_checkpoint(config: HeadConfig, n_support: int = 6, seed: int = 0) -> HeadCheckpoint:
    """A KRR head fitted to random features and targets (its support points are random, so its kernel is non-trivial)."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(n_support, config.n_features, generator=generator)
    targets = torch.rand(n_support, generator=generator) * 10.0
    head = CHGNetKRR(config, n_support).fit(features, targets, alpha=0.1, gamma=0.5, mean=3.5, std=4.7)
    return HeadCheckpoint(config, head.state_dict(), target_mean=3.5, target_std=4.7)


def _gated_checkpoint(config: HeadConfig, n_support: int = 6) -> HeadCheckpoint:
    """A gated head whose gate is open (≈ 0.9) everywhere near its support, so the soft gate is differentiable."""
    gate, regressor = (_krr_checkpoint(replace(config, kind="krr"), n_support, seed) for seed in (1, 2))
    head = CHGNetGatedKRR(config, n_support, n_support)
    head.gate.load_state_dict(gate.state_dict)
    head.regressor.load_state_dict(regressor.state_dict)
    head.gate.offset.fill_(0.9)
    head.gate.coef.zero_()
    head.target_mean.fill_(0.1)
    head.target_std.fill_(0.5)
    return HeadCheckpoint(config, head.state_dict(), target_mean=0.1, target_std=0.5)


@pytest.fixture(scope="module", params=["mlp", "krr", "gated-krr"])
def predictor64(request: pytest.FixtureRequest) -> CHGNetHeadPredictor:
    if request.param == "mlp":
        checkpoint = _checkpoint(HeadConfig(pooling=("mean", "max", "std"), hidden=16, dropout=0.0))
    elif request.param == "krr":
        checkpoint = _krr_checkpoint(HeadConfig(pooling=("mean", "max"), kind="krr", log1p=True))
    else:
        checkpoint = _gated_checkpoint(HeadConfig(kind="gated-krr", gate_temperature=0.2))
    predictor = CHGNetHeadPredictor(INFO, checkpoint)
    return copy.deepcopy(predictor).double()  # a private float64 copy (the CHGNet module is shared by the process)


def test_krr_interpolates_its_training_data_and_reverts_to_the_mean_far_away() -> None:
    config = HeadConfig(kind="krr", log1p=True)
    generator = torch.Generator().manual_seed(3)
    features = torch.randn(20, config.n_features, generator=generator, dtype=torch.float64)
    targets = torch.rand(20, generator=generator, dtype=torch.float64) * 20.0
    head = CHGNetKRR(config, 20).double().fit(features, targets, alpha=1e-9, gamma=1.0, mean=0.0, std=1.0)
    torch.testing.assert_close(head(features)[:, 0], targets, atol=1e-4, rtol=1e-4)
    far = head(features[:1] + 1e3)[0, 0]
    torch.testing.assert_close(far, torch.expm1(torch.log1p(targets).mean()))


def test_krr_architecture_selects_alpha_and_gamma_on_validation() -> None:
    from smoacs.train.arch import Samples, architecture

    arch = architecture("chgnet-head", {"kind": "krr", "alpha": 0.01})
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(40, arch.config.n_features, generator=generator)
    y = x[:, 0] + 0.1 * torch.randn(40, generator=generator)
    train, val = Samples([{"f": row[None]} for row in x[:30]]), Samples([{"f": row[None]} for row in x[30:]])
    model, history = arch.fit(train, y[:30], val, y[30:], mean=0.0, std=1.0)
    assert len(history) == 5 and {row["alpha"] for row in history} == {0.01}  # fixed alpha, the gamma grid
    best = min(history, key=lambda row: row["val_metric"])
    assert arch.config.gamma == best["gamma"] and arch.hyper["gamma"] == best["gamma"]
    with torch.no_grad():
        assert float((model(x[30:])[:, 0] - y[30:]).abs().mean()) == pytest.approx(best["val_metric"])


def test_pool_atoms_matches_per_crystal_reductions() -> None:
    values = torch.randn(7, 3)
    n_atoms = torch.tensor([3, 1, 3])
    crystal_idx = torch.repeat_interleave(torch.arange(3), n_atoms)
    pooled = pool_atoms(values, crystal_idx, n_atoms, ("mean", "max", "min", "std"))
    for k, rows in enumerate(torch.split(values, n_atoms.tolist())):
        expected = torch.cat([rows.mean(0), rows.amax(0), rows.amin(0), rows.std(0, unbiased=False)])
        torch.testing.assert_close(pooled[k], expected, atol=2e-4, rtol=1e-4)  # std carries sqrt(1e-8)


@pytest.mark.parametrize(
    "raw",
    [{"pooling": "mean+median"}, {"layer": 7}, {"hidden": 0}, {"dropout": 1.0}, {"width": 3}, {"pooling": []},
     {"kind": "gp"}, {"alpha": -1.0}],
)
def test_bad_config_is_one_clear_error(raw: dict) -> None:
    with pytest.raises(PredictorError, match="chgnet-head"):
        HeadConfig.from_dict(raw)


def test_config_round_trip() -> None:
    config = HeadConfig.from_dict({"pooling": "mean+max", "layer": 3, "hidden": 32})
    assert config.pooling == ("mean", "max") and config.n_features == 2 * 64 + 2
    assert HeadConfig.from_dict(config.to_dict()) == config


def test_protocol_and_gradients_match_finite_differences(predictor64: CHGNetHeadPredictor) -> None:
    """∂y/∂lattice, ∂y/∂frac and ∂y/∂probs from autograd equal central differences (float64)."""
    assert isinstance(predictor64, Predictor)
    base = CrystalBatch.from_structures(_structures(), dtype=torch.float64)
    probs = 0.9 * base.species_probs + 0.1 * torch.softmax(torch.randn_like(base.species_probs), -1)
    inputs = [t.clone().requires_grad_() for t in (base.lattice, base.frac_coords, probs)]

    def value(lattice: torch.Tensor, frac: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return predictor64(CrystalBatch(lattice, frac, p, base.crystal_idx, base.n_atoms)).sum()

    predictor64.rebuild(base)
    grads = torch.autograd.grad(value(*inputs), inputs)
    rng = np.random.default_rng(0)
    for k, grad in enumerate(grads):
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0
        direction = torch.as_tensor(rng.normal(size=grad.shape))
        eps = 1e-5
        with torch.no_grad():
            plus = [t.detach().clone() for t in inputs]
            minus = [t.detach().clone() for t in inputs]
            plus[k] += eps * direction
            minus[k] -= eps * direction
            numeric = (value(*plus) - value(*minus)) / (2 * eps)
        analytic = (grad * direction).sum()
        assert float(abs(numeric - analytic)) <= 1e-5 + 1e-4 * float(abs(analytic)), (k, float(numeric), float(analytic))


def test_one_hot_probabilities_equal_hard_species_and_supercell_is_invariant(predictor64: CHGNetHeadPredictor) -> None:
    structures = _structures()
    batch = CrystalBatch.from_structures(structures, dtype=torch.float64)
    value = predictor64(batch)
    assert value.shape == (2,) and value.dtype == torch.float64
    if predictor64.config.kind == "gated-krr":  # open gate: the hard gate passes the regressor, the soft one ~all of it
        assert bool((predictor64.final(batch) >= value).all())
        torch.testing.assert_close(predictor64.final(batch), value / torch.sigmoid(torch.tensor(0.4 / 0.2, dtype=value.dtype)))
    else:
        torch.testing.assert_close(predictor64.final(batch), value)
    supercells = [s.make_supercell([2, 1, 1], in_place=False) for s in structures]
    torch.testing.assert_close(predictor64(CrystalBatch.from_structures(supercells, dtype=torch.float64)), value)
    # a batch is the concatenation of its crystals
    single = torch.cat([predictor64(CrystalBatch.from_structures([s], dtype=torch.float64)) for s in structures])
    torch.testing.assert_close(single, value)


def test_training_architecture_round_trip(tmp_path) -> None:  # noqa: ANN001
    """Features prepared by the trainer, the saved head and chgnet-head:DIR give the same prediction."""
    from smoacs.predictors.card import ModelCard
    from smoacs.predictors.registry import load_predictor
    from smoacs.train.arch import architecture

    arch = architecture("chgnet-head", {"hidden": 8, "pooling": "mean+min"})
    samples = arch.prepare(_structures())
    model = arch.build(seed=1)
    model.train()
    arch.forward(model, arch.collate(samples, np.arange(2), torch.device("cpu")))  # fills the running statistics
    model.eval()
    raw = arch.forward(model, arch.collate(samples, np.arange(2), torch.device("cpu")))
    arch.save(tmp_path / arch.weights_file, model, mean=2.0, std=3.0)
    ModelCard(arch="chgnet-head", weights=arch.weights_file, property="tc", unit="K", target="-prop").write(tmp_path)
    predictor = load_predictor(f"chgnet-head:{tmp_path}")
    assert predictor.info.property == "tc" and predictor.info.unit == "K"
    out = predictor(CrystalBatch.from_structures(_structures()))
    torch.testing.assert_close(out, raw * 3.0 + 2.0, atol=1e-4, rtol=1e-4)


def test_missing_or_foreign_directory_is_one_clear_error(tmp_path) -> None:  # noqa: ANN001
    from smoacs.predictors.card import ModelCard
    from smoacs.predictors.chgnet_head import from_path

    with pytest.raises(PredictorError, match="not found"):
        from_path(str(tmp_path / "absent"))
    ModelCard(arch="cgcnn", weights="model.pth.tar", property="tc", unit="K", target="-prop").write(tmp_path)
    with pytest.raises(PredictorError, match="not a chgnet-head"):
        from_path(str(tmp_path))


def test_gated_head_reports_zero_behind_a_closed_gate_and_keeps_a_soft_gradient() -> None:
    config = HeadConfig(kind="gated-krr", log1p=True)
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(30, config.n_features, generator=generator)
    gapped = x[:, 0] > 0.3
    y = torch.where(gapped, 1.0 + x[:, 1].abs(), torch.zeros(30))
    head = CHGNetGatedKRR(config, 30, int(gapped.sum()))
    head.gate.fit(x, gapped.float(), alpha=1e-6, gamma=1.0, mean=0.0, std=1.0)
    head.regressor.fit(x[gapped], y[gapped], alpha=1e-6, gamma=1.0, mean=0.0, std=1.0)
    final = head.final(x)[:, 0]
    torch.testing.assert_close(final, y, atol=1e-3, rtol=1e-3)  # interpolating fits: exact 0 where the gate is shut
    assert bool((final[~gapped] == 0).all())
    probe = x[~gapped][:1].clone().requires_grad_()
    (grad,) = torch.autograd.grad(head(probe).sum(), probe)
    assert grad.abs().sum() > 0  # the soft gate lets the optimiser leave the zero region


def test_gated_architecture_fits_and_round_trips(tmp_path) -> None:  # noqa: ANN001
    from smoacs.train.arch import Samples, architecture

    arch = architecture("chgnet-head", {"kind": "gated-krr", "gamma": 1.0})
    generator = torch.Generator().manual_seed(6)
    latent = torch.randn(60, 1, generator=generator)  # every feature carries the one latent variable
    x = latent + 0.1 * torch.randn(60, arch.config.n_features, generator=generator)
    y = torch.where(latent[:, 0] > 0.3, 2.0 + latent[:, 0], torch.zeros(60))
    mean, std = float(y[:45].mean()), float(y[:45].std())
    train, val = Samples([{"f": row[None]} for row in x[:45]]), Samples([{"f": row[None]} for row in x[45:]])
    model, history = arch.fit(train, (y[:45] - mean) / std, val, (y[45:] - mean) / std, mean, std)
    assert len(history) == 8 and arch.config.gamma == 1.0 and "regressor_alpha" in arch.hyper
    model.eval()
    out = arch.forward(model, arch.collate(val, np.arange(15), torch.device("cpu"))) * std + mean
    assert float((out - y[45:]).abs().mean()) < float(y[45:].abs().mean())  # better than predicting 0
    zero = y[45:] == 0  # the gate was fitted on exact labels (de-normalised zeros carry round-off): shut on most of them
    assert float((out[zero].abs() < 1e-5).float().mean()) >= 0.8
    arch.save(tmp_path / "model.pt", model, mean, std)
    loaded = HeadCheckpoint.load(tmp_path / "model.pt").head()
    torch.testing.assert_close(loaded.final(x[45:]), model.final(x[45:]))
