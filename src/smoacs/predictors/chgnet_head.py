"""A small trained head on the frozen, pretrained CHGNet trunk (``smoacs train --arch chgnet-head``).

For properties with few labelled structures (846 superconductors for Tc) a graph network trained from scratch
memorises; CHGNet's atom features, learnt from 1.5 M MPtrj energies, forces and stresses, already encode bonding and
its stiffness. This module pools them per crystal and feeds them, with CHGNet's energy per atom and the volume per
atom, to a small head: an MLP (input standardisation by a parameter-free batch norm, dropout, one hidden layer) or kernel ridge
regression (:class:`CHGNetKRR`, Gaussian kernel on the standardised features, fitted in closed form):

    features = [pool(CHGNet atom features of ``layer``), E_CHGNet / atom (eV), V / atom (Å³)]
    value    = head(features) · target_std + target_mean

Everything is differentiable in lattice, coordinates and soft species (through :meth:`CHGNetPotential.trunk`,
which mixes the element embedding with ``species_probs``); the trunk stays frozen. The extensive-free features
(means, maxima, per-atom quantities) make the prediction invariant to the choice of supercell.

Saved as ``model.pt``: ``{"config": HeadConfig fields, "state_dict": head weights, "target_mean", "target_std"}``
next to the model card; ``chgnet-head:DIR`` loads a trained directory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from smoacs.crystal.batch import CrystalBatch
from smoacs.errors import PredictorError
from smoacs.predictors.base import PredictorInfo

Pooling = Literal["mean", "max", "min", "std"]
HeadKind = Literal["mlp", "krr", "gated-krr"]
POOLINGS: tuple[str, ...] = ("mean", "max", "min", "std")
CHGNET_WIDTH = 64
"""Width of CHGNet 0.3.0's atom features."""


@dataclass(frozen=True)
class HeadConfig:
    """Architecture of a CHGNet head.

    Attributes:
        layer: which CHGNet atom features to pool: 0 = element embedding, 1–4 = after each atom convolution
            (−1: the last).
        pooling: per-crystal pooling(s) of the atom features, concatenated.
        kind: ``mlp`` (trained by ``smoacs train``'s L1 loop), ``krr`` (kernel ridge regression with a Gaussian
            kernel, fitted in closed form; ``alpha`` and ``gamma`` chosen on the validation split when 0) or
            ``gated-krr`` (for zero-inflated targets such as band gaps: a KRR gate fitted to ``y > 0`` times a KRR
            regressor fitted on the ``y > 0`` rows; reported value ``[gate > 0.5] · regressor``, while optimising
            ``sigmoid((gate − 0.5) / gate_temperature) · regressor``).
        hidden: hidden width of the MLP.
        dropout: dropout on the standardised input features while training (MLP).
        alpha: KRR ridge strength (0: the best of a grid on the validation split).
        gamma: KRR kernel width: k = exp(−gamma · ‖x̂ − x̂′‖² / n_features) on standardised features (0: from a grid).
        log1p: KRR fits log(1 + y) and predicts exp(·) − 1 (for a non-negative, heavy-tailed target such as Tc).
        gate_temperature: width of the soft gate of ``gated-krr`` while optimising.
        model_name: CHGNet checkpoint of the trunk.
    """

    layer: int = -1
    pooling: tuple[str, ...] = ("mean",)
    kind: str = "mlp"
    hidden: int = 64
    dropout: float = 0.1
    alpha: float = 0.0
    gamma: float = 0.0
    log1p: bool = False
    gate_temperature: float = 0.05
    model_name: str = "0.3.0"

    def __post_init__(self) -> None:
        bad = [p for p in self.pooling if p not in POOLINGS]
        if bad or not self.pooling:
            raise PredictorError(f"chgnet-head: pooling must be a non-empty subset of {', '.join(POOLINGS)}, got {self.pooling}")
        if not -5 <= self.layer <= 4:
            raise PredictorError(f"chgnet-head: layer must be in 0..4 (or -1 for the last), got {self.layer}")
        if self.kind not in ("mlp", "krr", "gated-krr"):
            raise PredictorError(f"chgnet-head: kind must be mlp, krr or gated-krr, got {self.kind!r}")
        if self.gate_temperature <= 0:
            raise PredictorError(f"chgnet-head: gate_temperature must be > 0, got {self.gate_temperature}")
        if self.alpha < 0 or self.gamma < 0:
            raise PredictorError(f"chgnet-head: alpha and gamma must be ≥ 0 (0: chosen on validation), got {self.alpha}, {self.gamma}")
        if self.hidden < 1 or not 0.0 <= self.dropout < 1.0:
            raise PredictorError(f"chgnet-head: hidden must be ≥ 1 and dropout in [0, 1), got {self.hidden}, {self.dropout}")

    @property
    def n_features(self) -> int:
        """Input width of the head: pooled atom features + energy per atom + volume per atom."""
        return CHGNET_WIDTH * len(self.pooling) + 2

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> HeadConfig:
        """From saved / user hyper-parameters (unknown keys are an error)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise PredictorError(f"chgnet-head: unknown hyper-parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values = dict(raw)
        if "pooling" in values:
            pooling = values["pooling"]
            values["pooling"] = tuple(pooling.split("+")) if isinstance(pooling, str) else tuple(pooling)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly hyper-parameters."""
        raw = asdict(self)
        raw["pooling"] = list(self.pooling)
        return raw


def pool_atoms(values: Tensor, crystal_idx: Tensor, n_atoms: Tensor, pooling: tuple[str, ...]) -> Tensor:
    """``[B, F·len(pooling)]`` per-crystal pools of per-atom ``values [N, F]`` (batched scatter ops, differentiable)."""
    n_crystals, width = n_atoms.shape[0], values.shape[1]
    count = n_atoms.to(values.dtype)[:, None]
    index = crystal_idx[:, None].expand_as(values)
    mean = values.new_zeros(n_crystals, width).index_add(0, crystal_idx, values) / count
    out = []
    for kind in pooling:
        if kind == "mean":
            out.append(mean)
        elif kind == "std":
            centred = values - mean[crystal_idx]
            var = values.new_zeros(n_crystals, width).index_add(0, crystal_idx, centred * centred) / count
            out.append(torch.sqrt(var + 1e-8))
        else:
            reduce = "amax" if kind == "max" else "amin"
            out.append(values.new_zeros(n_crystals, width).scatter_reduce(0, index, values, reduce, include_self=False))
    return torch.cat(out, dim=1)


def crystal_features(trunk: Any, crystals: CrystalBatch, config: HeadConfig) -> Tensor:  # noqa: ANN401 - CHGNetPotential
    """``[B, config.n_features]`` head inputs of a batch from a :class:`~smoacs.predictors.chgnet.CHGNetPotential`."""
    out = trunk.trunk(crystals)
    atoms = out.atom_layers[config.layer]
    pooled = pool_atoms(atoms, crystals.crystal_idx, crystals.n_atoms, config.pooling)
    volume = (crystals.volumes() / crystals.n_atoms.to(crystals.lattice.dtype)).to(pooled.dtype)
    return torch.cat([pooled, out.energy_per_atom[:, None], volume[:, None]], dim=1)


class CHGNetHead(nn.Module):
    """The trainable part: standardise (running statistics of the training features), dropout, MLP → ``[B, 1]``."""

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        self.norm = nn.BatchNorm1d(config.n_features, affine=False, momentum=None)  # cumulative average of batch stats
        self.mlp = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(config.n_features, config.hidden), nn.SiLU(), nn.Linear(config.hidden, 1)
        )

    def forward(self, features: Tensor) -> Tensor:
        """``[B, 1]`` normalised output of ``[B, n_features]`` features."""
        if self.training and features.shape[0] == 1:  # one-row batch: standardise with the running statistics
            norm = self.norm
            x = nn.functional.batch_norm(features, norm.running_mean, norm.running_var, training=False, eps=norm.eps)
            return self.mlp(x)
        return self.mlp(self.norm(features))


KRR_ALPHAS = (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
KRR_GAMMAS = (0.1, 0.3, 1.0, 3.0, 10.0)


class CHGNetKRR(nn.Module):
    """Kernel ridge regression on standardised features, as a module: ``[B, 1]`` output normalised like the trainer's
    targets (``(y − target_mean) / target_std``).

    ``u(x) = b + Σ_i c_i exp(−γ ‖x̂ − x̂_i‖² / D)``, ``y = exp(u) − 1`` with ``log1p`` (else ``y = u``), where
    ``x̂ = (x − μ) / σ`` and ``x̂_i`` are the standardised training features. Far from the training data ``u → b``, so a
    maximised prediction stays within the range of the training targets (it cannot be driven to extrapolate).
    """

    def __init__(self, config: HeadConfig, n_support: int) -> None:
        super().__init__()
        self.config = config
        width = config.n_features
        for name, shape in (("mu", (width,)), ("sigma", (width,)), ("support", (n_support, width)), ("coef", (n_support,))):
            self.register_buffer(name, torch.zeros(shape))
        for name in ("offset", "gamma", "target_mean", "target_std"):
            self.register_buffer(name, torch.zeros(()))

    def forward(self, features: Tensor) -> Tensor:
        """``[B, 1]`` normalised prediction."""
        x = (features - self.mu) / self.sigma
        d2 = (x * x).sum(1, keepdim=True) + (self.support * self.support).sum(1) - 2.0 * x @ self.support.T
        u = self.offset + torch.exp(-self.gamma / x.shape[1] * d2.clamp_min(0.0)) @ self.coef
        y = torch.expm1(u) if self.config.log1p else u
        return ((y - self.target_mean) / self.target_std)[:, None]

    @torch.no_grad()
    def fit(self, features: Tensor, targets: Tensor, alpha: float, gamma: float, mean: float, std: float) -> CHGNetKRR:
        """Closed-form fit on ``features [M, D]`` and de-normalised ``targets [M]`` (float64 solve)."""
        x64 = features.double()
        mu, sigma = x64.mean(0), x64.std(0, unbiased=False) + 1e-6
        x = (x64 - mu) / sigma
        y = torch.log1p(targets.double().clamp_min(0.0)) if self.config.log1p else targets.double()
        offset = y.mean()
        d2 = ((x * x).sum(1, keepdim=True) + (x * x).sum(1) - 2.0 * x @ x.T).clamp_min(0.0)
        kernel = torch.exp(-gamma / x.shape[1] * d2)
        coef = torch.linalg.solve(kernel + alpha * torch.eye(len(x), dtype=x.dtype), y - offset)
        for name, value in (("mu", mu), ("sigma", sigma), ("support", x), ("coef", coef), ("offset", offset),
                            ("gamma", torch.tensor(gamma)), ("target_mean", torch.tensor(mean)), ("target_std", torch.tensor(std))):  # fmt: skip
            getattr(self, name).copy_(value)
        return self


class CHGNetGatedKRR(nn.Module):
    """A zero-inflated target as ``gate × regressor`` (two :class:`CHGNetKRR`, the gate on raw 0/1 labels).

    ``forward`` (optimising): ``sigmoid((g − 0.5) / T) · r``; :meth:`final` (reporting): ``[g > 0.5] · r``; both
    normalised like the trainer's targets. ``r`` is clamped at 0 (a gap is never negative).
    """

    def __init__(self, config: HeadConfig, n_gate: int, n_regressor: int) -> None:
        super().__init__()
        self.config = config
        self.gate = CHGNetKRR(replace(config, kind="krr", log1p=False), n_gate)
        self.regressor = CHGNetKRR(replace(config, kind="krr"), n_regressor)
        self.register_buffer("target_mean", torch.zeros(()))
        self.register_buffer("target_std", torch.ones(()))

    def _parts(self, features: Tensor) -> tuple[Tensor, Tensor]:
        gate = self.gate(features)[:, 0] * self.gate.target_std + self.gate.target_mean
        value = (self.regressor(features)[:, 0] * self.regressor.target_std + self.regressor.target_mean).clamp_min(0.0)
        return gate, value

    def _normalised(self, value: Tensor) -> Tensor:
        return ((value - self.target_mean) / self.target_std)[:, None]

    def forward(self, features: Tensor) -> Tensor:
        """``[B, 1]`` soft-gated normalised prediction (differentiable)."""
        gate, value = self._parts(features)
        return self._normalised(torch.sigmoid((gate - 0.5) / self.config.gate_temperature) * value)

    def final(self, features: Tensor) -> Tensor:
        """``[B, 1]`` hard-gated normalised prediction (the reported value)."""
        gate, value = self._parts(features)
        return self._normalised(torch.where(gate > 0.5, value, torch.zeros_like(value)))


@dataclass
class HeadCheckpoint:
    """A saved head: configuration, weights and target normalisation."""

    config: HeadConfig
    state_dict: dict[str, Tensor] = field(default_factory=dict)
    target_mean: float = 0.0
    target_std: float = 1.0

    def save(self, path: str | Path) -> None:
        """Write ``path`` (a torch file of plain types and tensors)."""
        torch.save({"config": self.config.to_dict(), "state_dict": self.state_dict,
                    "target_mean": self.target_mean, "target_std": self.target_std}, path)  # fmt: skip

    @classmethod
    def load(cls, path: str | Path) -> HeadCheckpoint:
        """Read a file written by :meth:`save`; clear error if it is not one."""
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
            return cls(HeadConfig.from_dict(raw["config"]), raw["state_dict"], float(raw["target_mean"]), float(raw["target_std"]))
        except (OSError, KeyError, TypeError, RuntimeError) as exc:
            raise PredictorError(f"{path} is not a chgnet-head checkpoint: {exc}") from exc

    def head(self) -> nn.Module:
        """The head module (:class:`CHGNetHead` or :class:`CHGNetKRR`) with the saved weights (evaluation mode)."""
        if self.config.kind == "krr":
            head: nn.Module = CHGNetKRR(self.config, int(self.state_dict["support"].shape[0]))
        elif self.config.kind == "gated-krr":
            sizes = (int(self.state_dict[f"{part}.support"].shape[0]) for part in ("gate", "regressor"))
            head = CHGNetGatedKRR(self.config, *sizes)
        else:
            head = CHGNetHead(self.config)
        head.load_state_dict(self.state_dict)
        return head.eval()


class CHGNetHeadPredictor(nn.Module):
    """Frozen CHGNet trunk + trained head, behind the ``Predictor`` protocol (output in ``info.unit``).

    Args:
        info: name, property and unit.
        checkpoint: the trained head.
        transform: map from the de-normalised output to the property (e.g. a model card's output transform).
    """

    def __init__(self, info: PredictorInfo, checkpoint: HeadCheckpoint, transform: Any = None) -> None:  # noqa: ANN401
        super().__init__()
        from smoacs.predictors.chgnet import CHGNetPotential

        self.info = info
        self.config = checkpoint.config
        self.trunk = CHGNetPotential(model_name=checkpoint.config.model_name)
        self.head = checkpoint.head()
        self.mean, self.std = checkpoint.target_mean, checkpoint.target_std
        self.transform = transform
        for parameter in self.head.parameters():
            parameter.requires_grad_(False)

    def rebuild(self, crystals: CrystalBatch) -> None:
        """Rebuild CHGNet's graphs from the current geometry."""
        self.trunk.rebuild(crystals)

    def forward(self, crystals: CrystalBatch) -> Tensor:
        """``[n_crystals]`` prediction, differentiable in lattice, coordinates and species probabilities."""
        return self._value(self.head(crystal_features(self.trunk, crystals, self.config)), crystals)

    def final(self, crystals: CrystalBatch) -> Tensor:
        """Prediction for discrete crystals: the same network, with a gated head's hard gate."""
        final = getattr(self.head, "final", None)
        if final is None:
            return self(crystals)
        return self._value(final(crystal_features(self.trunk, crystals, self.config)), crystals)

    def _value(self, normalised: Tensor, crystals: CrystalBatch) -> Tensor:
        value = normalised[:, 0] * self.std + self.mean
        if self.transform is not None:
            value = self.transform(value)
        return value.to(crystals.lattice.dtype)

    def train(self, mode: bool = True) -> CHGNetHeadPredictor:
        """Always evaluation mode (a predictor is never trained through this wrapper)."""
        return super().train(False)


def from_path(path: str, property: str | None = None, **options: object) -> CHGNetHeadPredictor:  # noqa: A002
    """A CHGNet-head predictor from a directory written by ``smoacs train --arch chgnet-head``.

    Args:
        path: the model directory (``model.json`` + ``model.pt``).
        property: property key of the output (default: the card's).
        options: ``name`` (the registry name shown in results).
    """
    from smoacs.predictors.card import ModelCard, apply_output_transform

    target = Path(path).expanduser()
    if not target.is_dir():
        raise PredictorError(f"chgnet-head model not found: {path} (expected a directory written by smoacs train)")
    card = ModelCard.read(target)
    if card.arch != "chgnet-head":
        raise PredictorError(f"{path} holds a {card.arch!r} model, not a chgnet-head")
    name = str(options.pop("name", f"chgnet-head:{path}"))
    if options:
        raise PredictorError(f"unknown chgnet-head option(s): {', '.join(sorted(options))}")
    info = PredictorInfo(name, property or card.property, card.unit, str(card.data.get("name", "")), str(path),
                         card.description or f"CHGNet trunk + MLP head, {card.target}")  # fmt: skip
    checkpoint = HeadCheckpoint.load(card.weights_path(target))
    transform = None if card.output_transform == "none" else partial(apply_output_transform, transform=card.output_transform)
    return CHGNetHeadPredictor(info, checkpoint, transform)
