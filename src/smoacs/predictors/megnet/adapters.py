"""MEGNet predictors: the published Materials Project and multi-fidelity models behind the smoacs `Predictor` protocol.

Inputs (all differentiable):

* species: ``species_probs @ T`` with T the model's 98 × 16 element table (embedding row Z for element index Z − 1).
  MEGNet's Keras table has rows only up to Z = 94; Am, Cm, Bk and Cf (Z = 95 … 98) get a **zero row** here, so soft
  probabilities on them stay differentiable. A discrete crystal that contains one of them has no MEGNet prediction:
  :meth:`final` reports NaN for it (the original model would fail with an index error).
* geometry: a periodic neighbour list (indices and images) built by :meth:`rebuild` on the optimiser's schedule;
  distances are recomputed from ``lattice`` and ``frac_coords`` in every forward pass and expanded on the Gaussians.

The hard cutoff. MEGNet has no smooth cutoff: a pair entering the 4 or 5 Å sphere adds a bond with a large Gaussian
weight at once, and the output jumps (the 2018 band gap of NaCl moves from 0.58 to 4.77 eV across a = 4√2 Å). Between
rebuilds the graph is fixed, so the forward pass is smooth in the geometry (bonds that leave the sphere keep their
continuously varying features until the next rebuild); the jump happens at rebuilds. Optionally, ``smooth_cutoff=δ``
builds the list at ``cutoff + δ`` and weights each bond by ``w(d) = 1`` for ``d ≤ cutoff``, a cosine from 1 to 0 on
``(cutoff, cutoff + δ)``, and 0 beyond; every bond mean becomes ``Σ w x / max(Σ w, 1)`` and the bond Set2Set
softmax ``w exp(l) / Σ w exp(l)``. The result is continuous in the geometry across rebuilds and equals the exact
model whenever no pair distance lies in ``(cutoff, cutoff + δ)``. It is meant for optimisation only: :meth:`final`
always evaluates the exact model on a freshly built list at the model's own cutoff.
"""

from __future__ import annotations

import copy
import math
from typing import Literal

import torch
from torch.func import functional_call, stack_module_state, vmap
from torch import Tensor, nn

from smoacs.chem.elements import N_ELEMENTS
from smoacs.crystal.batch import CrystalBatch
from smoacs.crystal.neighbors import NeighborList, build_neighbor_list, edge_vectors
from smoacs.errors import PredictorError
from smoacs.predictors.base import GraphPredictor, PredictorInfo
from smoacs.predictors.megnet.network import EMBEDDING_ROWS, MEGNetGraph, MEGNetNet, gaussian_expansion
from smoacs.predictors.megnet.weights import MEGNetConfig, load_megnet

FIDELITIES: dict[str, int] = {"pbe": 0, "gllb": 1, "hse": 2, "exp": 3}
N_ENSEMBLE = 6
#: How the models of one predictor run: ``loop`` one after another, ``batched`` as one vectorised call
#: (``torch.func.vmap`` over their stacked weights), ``auto`` batched on CUDA and a loop on CPU, where the batched
#: call measured 1.5× slower (benchmarks/README.md, "MEGNet multi-fidelity: batched networks").
BatchMode = Literal["auto", "loop", "batched"]
#: Fidelities of the multi-fidelity band-gap models (the keys of :data:`FIDELITIES`).
Fidelity = Literal["pbe", "gllb", "hse", "exp"]


class _StackedNets:
    """The weights of same-topology networks stacked on a leading axis, and one forward pass over all of them.

    ``base`` is a weightless (meta-device) copy of the first network with a linear last layer; the final sigmoid of
    classifier networks is applied afterwards, so networks that differ only in it batch together.
    """

    def __init__(self, nets: list[MEGNetNet]) -> None:
        self.base = copy.deepcopy(nets[0]).to("meta")
        self.base.final_activation = "linear"
        self.sigmoid = torch.tensor([net.final_activation == "sigmoid" for net in nets])
        self.nets = nets
        self.key: tuple[object, ...] | None = None

    def _stacked(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        first = next(self.nets[0].parameters())
        key = (first.device, first.dtype, first.data_ptr())
        if self.key != key:  # weights moved or converted since the last call
            self.params, self.buffers = stack_module_state(self.nets)  # type: ignore[arg-type]
            self.params = {k: v.detach() for k, v in self.params.items()}
            self.key = key
        return self.params, self.buffers

    def __call__(self, probs: Tensor, bonds: Tensor, n_crystals: int, fidelity: int, graph: MEGNetGraph) -> Tensor:
        """``[n_nets, n_crystals]`` raw outputs (sigmoid applied where the network has one)."""
        params, buffers = self._stacked()
        base = self.base

        def one(p: dict[str, Tensor], b: dict[str, Tensor]) -> Tensor:
            table = p["atom_embedding.weight"][1:]
            table = torch.cat([table, table.new_zeros((N_ELEMENTS - table.shape[0], table.shape[1]))])
            if base.state == "fidelity":
                state = p["state_embedding.weight"][fidelity].expand(n_crystals, -1)
            else:
                state = table.new_zeros((n_crystals, 2))
            return functional_call(base, (p, b), (probs @ table, bonds, state, graph))

        raw = vmap(one)(params, buffers)
        sigmoid = self.sigmoid.to(raw.device)[:, None]
        return torch.where(sigmoid, torch.sigmoid(raw), raw)


def cutoff_weight(distance: Tensor, cutoff: float, width: float) -> Tensor:
    """``[n_edges]`` bond presence: 1 up to ``cutoff``, cosine to 0 at ``cutoff + width``, 0 beyond (C¹)."""
    x = ((distance - cutoff) / width).clamp(0.0, 1.0)
    return 0.5 * (1.0 + torch.cos(math.pi * x))


def _graph_settings(config: MEGNetConfig) -> tuple[float, float, float, int, float]:
    return (config.cutoff, config.gaussian_start, config.gaussian_stop, config.n_gaussians, config.gaussian_width)


class MEGNetEnsemble(GraphPredictor):
    """Shared featurisation and evaluation of one or more MEGNet models on one graph.

    All models of one predictor share the cutoff and Gaussian centres (checked), so the neighbour list, distances and
    bond features are computed once per forward pass; each model has its own element embedding.

    Args:
        keys: model keys (see :data:`smoacs.predictors.megnet.weights.MODEL_KEYS`).
        fidelity: fidelity index fed to multi-fidelity models (ignored by MP models).
        smooth_cutoff: width δ in Å of the optimisation-only smooth cutoff, or None for the exact model.
        batch: :data:`BatchMode` — run the models one after another or as one batched call (same results).
    """

    max_neighbors = None

    def __init__(
        self, keys: list[str], fidelity: int = 0, smooth_cutoff: float | None = None, batch: BatchMode = "auto"
    ) -> None:
        super().__init__()
        if batch not in ("auto", "loop", "batched"):
            raise PredictorError(f"batch must be auto, loop or batched, got {batch!r}")
        self.batch: BatchMode = batch
        loaded = [load_megnet(key) for key in keys]
        self.nets = nn.ModuleList(net for net, _ in loaded)
        self.configs: list[MEGNetConfig] = [config for _, config in loaded]
        first = self.configs[0]
        for config in self.configs[1:]:
            if _graph_settings(config) != _graph_settings(first):
                raise PredictorError(f"{config.model} and {first.model} use different graphs")
        if smooth_cutoff is not None and smooth_cutoff <= 0:
            raise PredictorError(f"smooth_cutoff must be a positive width in Å or None, got {smooth_cutoff}")
        self.model_cutoff = first.cutoff
        self.smooth_cutoff = smooth_cutoff
        self.cutoff = first.cutoff + (smooth_cutoff or 0.0)
        self.gaussian_width = first.gaussian_width
        self.fidelity = fidelity
        self.register_buffer("centers", first.centers().float())
        self.register_buffer("scaler_mean", torch.tensor([c.scaler_mean for c in self.configs]))
        self.register_buffer("scaler_std", torch.tensor([c.scaler_std for c in self.configs]))
        topologies = {(c.set2set_steps, c.state) for c in self.configs}
        self._stack = _StackedNets(list(self.nets)) if len(self.nets) > 1 and len(topologies) == 1 else None  # type: ignore[arg-type]

    def batched(self, device: torch.device) -> bool:
        """Whether :meth:`outputs` runs the models as one batched call on ``device``."""
        if self._stack is None or self.batch == "loop":
            return False
        return self.batch == "batched" or device.type == "cuda"

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the weights (float32 unless converted with ``.double()``)."""
        return self.centers.dtype

    def outputs(self, crystals: CrystalBatch, graph: NeighborList, exact: bool = False) -> Tensor:
        """``[n_models, n_crystals]`` scaled outputs of every model (classifier: probability of a non-metal).

        Args:
            crystals: the batch; ``lattice``, ``frac_coords`` and ``species_probs`` may require grad.
            graph: neighbour list (from :meth:`graph`, or built at the model cutoff when ``exact``).
            exact: ignore ``smooth_cutoff`` (all bonds of ``graph`` weigh 1).
        """
        dtype = self.dtype
        lattice, frac = crystals.lattice.to(dtype), crystals.frac_coords.to(dtype)
        distance = edge_vectors(lattice, frac, crystals.crystal_idx, graph).norm(dim=-1)
        bond_features = gaussian_expansion(distance, self.centers, self.gaussian_width)
        weight = None
        if self.smooth_cutoff is not None and not exact:
            weight = cutoff_weight(distance, self.model_cutoff, self.smooth_cutoff)
        megnet_graph = MEGNetGraph(
            center=graph.center,
            neighbor=graph.neighbor,
            atom_crystal=crystals.crystal_idx,
            edge_crystal=crystals.crystal_idx.index_select(0, graph.center),
            n_atoms_total=int(crystals.frac_coords.shape[0]),
            n_crystals=crystals.n_crystals,
            edge_weight=weight,
        )
        probs = crystals.species_probs.to(dtype)
        if self.batched(probs.device):
            assert self._stack is not None
            raw = self._stack(probs, bond_features, crystals.n_crystals, self.fidelity, megnet_graph)
            return raw * self.scaler_std[:, None] + self.scaler_mean[:, None]
        rows = []
        for net in self.nets:
            assert isinstance(net, MEGNetNet)
            atom_features = probs @ net.element_table(N_ELEMENTS)
            state = net.initial_state(crystals.n_crystals, self.fidelity)
            rows.append(net(atom_features, bond_features, state, megnet_graph))
        raw = torch.stack(rows)
        return raw * self.scaler_std[:, None] + self.scaler_mean[:, None]

    def exact_outputs(self, crystals: CrystalBatch) -> Tensor:
        """``[n_models, n_crystals]`` outputs of the exact model on a fresh list at the model cutoff.

        Crystals containing an element without a MEGNet embedding (Z > 94) get NaN.
        """
        graph = build_neighbor_list(
            crystals.lattice.detach(),
            crystals.frac_coords.detach(),
            crystals.crystal_idx,
            crystals.n_atoms,
            self.model_cutoff,
            None,
        )
        out = self.outputs(crystals, graph, exact=True)
        return torch.where(self.unsupported(crystals)[None, :], torch.full_like(out, torch.nan), out)

    @staticmethod
    def unsupported(crystals: CrystalBatch) -> Tensor:
        """``[n_crystals]`` True where a site's most probable element has no MEGNet embedding (Z > 94)."""
        bad_atom = crystals.hard_species() >= EMBEDDING_ROWS - 1
        bad = torch.zeros(crystals.n_crystals, dtype=torch.long, device=bad_atom.device)
        return bad.index_add(0, crystals.crystal_idx, bad_atom.long()) > 0

    def final(self, crystals: CrystalBatch) -> Tensor:
        """``[n_crystals]`` value reported for discrete crystals (exact model, fresh graph)."""
        with torch.no_grad():
            return self.combine_final(self.exact_outputs(crystals))

    def forward_graph(self, crystals: CrystalBatch, graph: NeighborList) -> Tensor:
        """``[n_crystals]`` differentiable prediction in ``info.unit`` on ``graph``."""
        return self.combine(self.outputs(crystals, graph))

    def combine(self, outputs: Tensor) -> Tensor:
        """Differentiable prediction from the ``[n_models, n_crystals]`` model outputs."""
        raise NotImplementedError

    def combine_final(self, outputs: Tensor) -> Tensor:
        """Reported value from exact outputs; the differentiable combination unless overridden."""
        return self.combine(outputs)


class MEGNetRegressor(MEGNetEnsemble):
    """One MEGNet regression model; output ``transform(raw · std + mean)`` (``10**y`` for the log10 moduli)."""

    def __init__(self, info: PredictorInfo, key: str, pow10: bool = False, smooth_cutoff: float | None = None) -> None:
        super().__init__([key], smooth_cutoff=smooth_cutoff)
        self.info = info
        self.pow10 = pow10

    def combine(self, outputs: Tensor) -> Tensor:
        """``[n_crystals]`` value in ``info.unit``."""
        return torch.pow(10.0, outputs[0]) if self.pow10 else outputs[0]


class MEGNetBandGap(MEGNetEnsemble):
    """2018 PBE band gap: regression (trained on non-metals only) gated by the 2018 metal/non-metal classifier.

    During optimisation the gate is soft, ``gap · P(non-metal)``, so gradients reach both models; for discrete
    crystals (:meth:`final`) it is hard: 0 eV when P(non-metal) < 0.5, else max(gap, 0).
    """

    def __init__(self, info: PredictorInfo, smooth_cutoff: float | None = None, batch: BatchMode = "auto") -> None:
        keys = ["mp-2018.6.1/band_gap_regression", "mp-2018.6.1/band_classification"]
        super().__init__(keys, 0, smooth_cutoff, batch)
        self.info = info

    def combine(self, outputs: Tensor) -> Tensor:
        """Soft-gated gap ``[n_crystals]`` in eV."""
        return outputs[0] * outputs[1]

    def combine_final(self, outputs: Tensor) -> Tensor:
        """Hard-gated gap ``[n_crystals]`` in eV."""
        gap, p_nonmetal = outputs[0], outputs[1]
        return torch.where(p_nonmetal < 0.5, torch.zeros_like(gap), gap.clamp_min(0.0))


class MEGNetMultiFidelityBandGap(MEGNetEnsemble):
    """Multi-fidelity band gap (Chen et al., Nat. Comput. Sci. 1, 46, 2021): mean of the 6 ``pbe_gllb_hse_exp`` models.

    Args:
        info: registry info.
        fidelity: ``"pbe"``, ``"gllb"`` (GLLB-SC), ``"hse"`` or ``"exp"`` (experimental).
        smooth_cutoff: see the module docstring.

    ``__call__`` returns the ensemble mean in eV; :meth:`predict_with_uncertainty` also returns the population
    standard deviation (ddof = 0) of the 6 members, the uncertainty the authors suggest reporting.
    """

    def __init__(
        self, info: PredictorInfo, fidelity: Fidelity = "pbe", smooth_cutoff: float | None = None, batch: BatchMode = "auto"
    ) -> None:
        if fidelity not in FIDELITIES:
            raise PredictorError(f"fidelity must be one of {', '.join(FIDELITIES)}, got {fidelity!r}")
        keys = [f"mf_2020/pbe_gllb_hse_exp/{i}" for i in range(N_ENSEMBLE)]
        super().__init__(keys, FIDELITIES[fidelity], smooth_cutoff, batch)
        self.info = info
        self.fidelity_name = fidelity

    def combine(self, outputs: Tensor) -> Tensor:
        """Ensemble mean ``[n_crystals]`` in eV."""
        return outputs.mean(dim=0)

    def predict_with_uncertainty(self, crystals: CrystalBatch, exact: bool = True) -> tuple[Tensor, Tensor]:
        """Ensemble mean and spread, each ``[n_crystals]`` in eV.

        Args:
            crystals: the batch.
            exact: evaluate the exact model on a fresh graph (as :meth:`final`, no gradient); False uses the current
                optimisation graph and keeps gradients.
        """
        if exact:
            with torch.no_grad():
                outputs = self.exact_outputs(crystals)
        else:
            outputs = self.outputs(crystals, self.graph(crystals))
        return outputs.mean(dim=0), outputs.std(dim=0, correction=0)
