"""MEGNet (Chen et al., Chem. Mater. 31, 3564, 2019) in PyTorch: an exact, batched port of megnet 1.3.2's forward pass.

One :class:`MEGNetNet` is one pretrained Keras model. Every detail follows the Keras implementation, including its
quirks (see ``/work/shared/fixtures/megnet/README.md`` §3–§6 for the derivation):

* ``softplus2(x) = softplus(x) − ln 2`` on every Dense layer except the last, and on the hidden layers of the
  MEGNet-block MLPs; the last layer of each block MLP is linear.
* Gaussian bond features ``exp(−(d − μ_k)² / w²)`` (no factor 2), w = 0.5 Å, 100 centres.
* Set2Set with Keras-2 ``hard_sigmoid(x) = clip(0.2 x + 0.5, 0, 1)`` gates in the order i, f, c, o, one kernel applied
  to q* = [h, r], and a cell state that is *not* carried between steps (c = i · g every step).
* Atom update aggregates bonds by a mean over the centre atom; state update means bonds and atoms per crystal.

Batching is ragged: atoms carry ``crystal_idx``, edges carry their centre's crystal, and every per-crystal reduction is
an ``index_add`` (means) or a segment softmax with max subtraction (Set2Set); there are no Python loops over atoms,
edges or crystals. An optional per-edge weight ``w ∈ [0, 1]`` turns every bond mean and the bond Set2Set into
weighted versions; with all weights 1 (the default, ``edge_weight=None``) the network is the original one exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

N_GAUSSIANS = 100
GAUSSIAN_WIDTH = 0.5  # Å, in every published model
EMBEDDING_ROWS = 95  # Keras Embedding(95, 16) indexed directly by Z; row 0 unused, Z = 1 … 94 real
N_FIDELITIES = 4  # multi-fidelity state: 0 PBE, 1 GLLB-SC, 2 HSE, 3 experiment
_LN2 = math.log(2.0)


def softplus2(x: Tensor) -> Tensor:
    """megnet's ``softplus2(x) = softplus(x) − ln 2`` (zero at x = 0); gradient sigmoid(x) everywhere."""
    return F.softplus(x).sub_(_LN2)  # in place: softplus saves its input, not its output, for backward


def hard_sigmoid(x: Tensor) -> Tensor:
    """Keras-2 ``hard_sigmoid(x) = clip(0.2 x + 0.5, 0, 1)`` (not PyTorch's ``relu6(x + 3) / 6``)."""
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


def gaussian_expansion(distance: Tensor, centers: Tensor, width: float = GAUSSIAN_WIDTH) -> Tensor:
    """``[n_edges, n_centers]`` bond features ``exp(−(d − μ)² / w²)`` from ``[n_edges]`` distances in Å."""
    return torch.exp(-((distance[:, None] - centers) ** 2) / width**2)


def segment_sum(values: Tensor, segment: Tensor, n_segments: int) -> Tensor:
    """``[n_segments, ...]`` sums of ``values[k]`` grouped by ``segment[k]``."""
    out = values.new_zeros((n_segments, *values.shape[1:]))
    return out.index_add(0, segment, values)


def segment_mean(values: Tensor, segment: Tensor, n_segments: int, weight: Tensor | None = None) -> Tensor:
    """Mean of ``values`` ``[n, F]`` per segment; empty segments give 0.

    With ``weight`` ``[n]`` the mean is ``Σ w x / max(Σ w, 1)``: identical to the plain mean when every weight is 1,
    and continuous as weights go to 0 (a segment whose only members fade out fades to 0, like an empty one).
    """
    if weight is None:
        counts = torch.bincount(segment, minlength=n_segments).to(values.dtype)
        return segment_sum(values, segment, n_segments) / counts.clamp_min(1.0)[:, None]
    total = segment_sum(weight, segment, n_segments)
    return segment_sum(values * weight[:, None], segment, n_segments) / total.clamp_min(1.0)[:, None]


def segment_softmax(logits: Tensor, segment: Tensor, n_segments: int, weight: Tensor | None = None) -> Tensor:
    """``[n]`` softmax of ``logits`` within each segment (max subtracted first).

    With ``weight`` the result is ``w_k exp(l_k) / Σ w exp(l)``, the softmax over a set whose members are partially
    present; all-ones weights give the plain softmax.
    """
    peak = torch.full((n_segments,), -torch.inf, dtype=logits.dtype, device=logits.device)
    peak = peak.scatter_reduce(0, segment, logits.detach(), reduce="amax", include_self=True)
    expo = torch.exp(logits - peak.index_select(0, segment))
    if weight is not None:
        expo = expo * weight
    denominator = segment_sum(expo, segment, n_segments)
    return expo / denominator.clamp_min(torch.finfo(logits.dtype).tiny).index_select(0, segment)


class _MLP(nn.Module):
    """Keras Dense stack: softplus2 after every layer, except the last when ``linear_last``."""

    def __init__(self, widths: list[int], linear_last: bool) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.linear_last = linear_last

    def forward(self, x: Tensor) -> Tensor:
        last = len(self.layers) - 1
        for k, layer in enumerate(self.layers):
            x = layer(x)
            if k < last or not self.linear_last:
                x = softplus2(x)
        return x


class MEGNetBlock(nn.Module):
    """One MEGNetLayer (φ_e, φ_v, φ_u, each 3 layers 64-64-32 with a linear last layer) plus its pre-MLPs.

    Block 1 has no pre-MLPs (the input Dense layers play that role); blocks 2 and 3 first pass atoms, bonds and state
    through 32→64→32 softplus2 MLPs. The caller adds the returned updates to the block *inputs* (residuals).
    """

    def __init__(self, with_pre: bool, width: int = 32) -> None:
        super().__init__()
        self.with_pre = with_pre
        if with_pre:
            self.pre_atom = _MLP([width, 64, width], linear_last=False)
            self.pre_bond = _MLP([width, 64, width], linear_last=False)
            self.pre_state = _MLP([width, 64, width], linear_last=False)
        self.phi_e = _MLP([4 * width, 64, 64, width], linear_last=True)
        self.phi_v = _MLP([3 * width, 64, 64, width], linear_last=True)
        self.phi_u = _MLP([3 * width, 64, 64, width], linear_last=True)

    def forward(self, v: Tensor, e: Tensor, u: Tensor, graph: MEGNetGraph) -> tuple[Tensor, Tensor, Tensor]:
        """Updates ``(v', e', u')`` of shapes ``[n_atoms, 32]``, ``[n_edges, 32]``, ``[n_crystals, 32]``."""
        if self.with_pre:
            v, e, u = self.pre_atom(v), self.pre_bond(e), self.pre_state(u)
        # Bond update on concat[v_centre, v_neighbour, e, u]: split the first kernel and project atoms and states
        # before gathering (same sum, far fewer multiply-adds on the edge axis).
        first = self.phi_e.layers[0]
        w_c, w_n, w_e, w_u = first.weight.split(v.shape[1], dim=1)
        atom_c, atom_n, state = v @ w_c.T, v @ w_n.T, u @ w_u.T
        hidden = (
            atom_c.index_select(0, graph.center)
            + atom_n.index_select(0, graph.neighbor)
            + e @ w_e.T
            + state.index_select(0, graph.edge_crystal)
            + first.bias
        )
        hidden = softplus2(hidden)
        hidden = softplus2(self.phi_e.layers[1](hidden))
        e_new = self.phi_e.layers[2](hidden)
        # Atom update: mean of the new bonds over their centre atom.
        bonds_to_atoms = segment_mean(e_new, graph.center, graph.n_atoms_total, graph.edge_weight)
        v_new = self.phi_v(torch.cat([bonds_to_atoms, v, u.index_select(0, graph.atom_crystal)], dim=1))
        # State update: means of new bonds and new atoms per crystal, and the old state.
        bonds_to_state = segment_mean(e_new, graph.edge_crystal, graph.n_crystals, graph.edge_weight)
        atoms_to_state = segment_mean(v_new, graph.atom_crystal, graph.n_crystals)
        u_new = self.phi_u(torch.cat([bonds_to_state, atoms_to_state, u], dim=1))
        return v_new, e_new, u_new


class Set2Set(nn.Module):
    """megnet's Set2Set readout (n_hidden 16, input 32 → output 32 per crystal).

    ``m = x W_m + b_m``; with q* = [h, r] starting at 0, each of ``T`` steps computes ``z = q* K + b`` and gates
    i, f, g, o (hard-sigmoid, hard-sigmoid, tanh, hard-sigmoid); the cell restarts from 0 every step, so
    ``c = i · g`` and ``h = o · tanh(c)``; then attention ``a = softmax_crystal(m · h)`` and ``r = Σ a m``.
    """

    def __init__(self, steps: int, in_features: int = 32, n_hidden: int = 16) -> None:
        super().__init__()
        self.steps = steps
        self.n_hidden = n_hidden
        self.x_to_m = nn.Linear(in_features, n_hidden)
        self.recurrent = nn.Linear(2 * n_hidden, 4 * n_hidden)

    def forward(self, x: Tensor, segment: Tensor, n_segments: int, weight: Tensor | None = None) -> Tensor:
        """``[n_segments, 2 · n_hidden]`` readout of rows ``x`` ``[n, in]`` grouped by ``segment``."""
        m = self.x_to_m(x)
        q = x.new_zeros((n_segments, 2 * self.n_hidden))
        for _ in range(self.steps):
            gate_i, _gate_f, gate_g, gate_o = self.recurrent(q).split(self.n_hidden, dim=1)
            cell = hard_sigmoid(gate_i) * torch.tanh(gate_g)  # f · c_prev with c_prev ≡ 0, as in megnet
            h = hard_sigmoid(gate_o) * torch.tanh(cell)
            logits = (m * h.index_select(0, segment)).sum(dim=1)
            attention = segment_softmax(logits, segment, n_segments, weight)
            r = segment_sum(attention[:, None] * m, segment, n_segments)
            q = torch.cat([h, r], dim=1)
        return q


@dataclass(frozen=True)
class MEGNetGraph:
    """Batched graph indices for one forward pass (no geometry).

    Attributes:
        center: ``[n_edges]`` global index of the centre atom (megnet's index1).
        neighbor: ``[n_edges]`` global index of the neighbour atom (index2).
        atom_crystal: ``[n_atoms]`` crystal of each atom.
        edge_crystal: ``[n_edges]`` crystal of each edge.
        n_atoms_total: number of atoms in the batch.
        n_crystals: number of crystals in the batch.
        edge_weight: ``[n_edges]`` presence weight in [0, 1], or None for all ones (the exact model).
    """

    center: Tensor
    neighbor: Tensor
    atom_crystal: Tensor
    edge_crystal: Tensor
    n_atoms_total: int
    n_crystals: int
    edge_weight: Tensor | None = None


class MEGNetNet(nn.Module):
    """One pretrained MEGNet model (topology of every megnet 1.3.2 MP and multi-fidelity model).

    Args:
        set2set_steps: Set2Set iterations T (1, 2 or 3 depending on the model).
        state: ``"zeros"`` for the MP models (a float state [0, 0] per crystal) or ``"fidelity"`` for the
            multi-fidelity models (an integer fidelity through a 4 × 16 embedding).
        final_activation: ``"linear"`` or ``"sigmoid"`` on the last Dense layer (sigmoid only for the
            metal/non-metal classifier).
    """

    def __init__(self, set2set_steps: int, state: str = "zeros", final_activation: str = "linear") -> None:
        super().__init__()
        if state not in ("zeros", "fidelity"):
            raise ValueError(f"state must be 'zeros' or 'fidelity', got {state!r}")
        if final_activation not in ("linear", "sigmoid"):
            raise ValueError(f"final_activation must be 'linear' or 'sigmoid', got {final_activation!r}")
        self.state = state
        self.final_activation = final_activation
        self.atom_embedding = nn.Embedding(EMBEDDING_ROWS, 16)
        state_width = 2
        if state == "fidelity":
            self.state_embedding = nn.Embedding(N_FIDELITIES, 16)
            state_width = 16
        self.atom_in = _MLP([16, 64, 32], linear_last=False)
        self.bond_in = _MLP([N_GAUSSIANS, 64, 32], linear_last=False)
        self.state_in = _MLP([state_width, 64, 32], linear_last=False)
        self.blocks = nn.ModuleList([MEGNetBlock(with_pre=False), MEGNetBlock(True), MEGNetBlock(True)])
        self.set2set_atom = Set2Set(set2set_steps)
        self.set2set_bond = Set2Set(set2set_steps)
        self.readout = _MLP([96, 32, 16, 1], linear_last=True)

    def element_table(self, n_elements: int) -> Tensor:
        """``[n_elements, 16]`` embedding row of element index z − 1 (Z = 1 … n_elements).

        Elements beyond Z = 94 (the Keras table's last row) get a zero row.
        """
        table = self.atom_embedding.weight[1:]
        if n_elements <= table.shape[0]:
            return table[:n_elements]
        return torch.cat([table, table.new_zeros((n_elements - table.shape[0], table.shape[1]))])

    def initial_state(self, n_crystals: int, fidelity: int | Tensor = 0) -> Tensor:
        """``[n_crystals, 2 or 16]`` state input: zeros (MP) or the fidelity embedding (multi-fidelity)."""
        weight = self.atom_embedding.weight
        if self.state == "zeros":
            return weight.new_zeros((n_crystals, 2))
        index = torch.as_tensor(fidelity, device=weight.device).long().expand(n_crystals)
        return self.state_embedding(index)

    def forward(self, atom_features: Tensor, bond_features: Tensor, state: Tensor, graph: MEGNetGraph) -> Tensor:
        """Raw model output ``[n_crystals]`` (before the target scaler).

        Args:
            atom_features: ``[n_atoms, 16]`` embedded atoms (``species_probs @ element_table``).
            bond_features: ``[n_edges, 100]`` Gaussian-expanded distances.
            state: ``[n_crystals, 2 or 16]`` from :meth:`initial_state`.
            graph: edge and crystal indices.
        """
        v, e, u = self.atom_in(atom_features), self.bond_in(bond_features), self.state_in(state)
        for block in self.blocks:
            dv, de, du = block(v, e, u, graph)
            v, e, u = v + dv, e + de, u + du
        pooled_atoms = self.set2set_atom(v, graph.atom_crystal, graph.n_crystals)
        pooled_bonds = self.set2set_bond(e, graph.edge_crystal, graph.n_crystals, graph.edge_weight)
        out = self.readout(torch.cat([pooled_atoms, pooled_bonds, u], dim=1))[:, 0]
        return torch.sigmoid(out) if self.final_activation == "sigmoid" else out
