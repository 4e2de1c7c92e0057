"""CHGNet as a batched, differentiable :class:`~smoacs.predictors.potential.Potential` (and energy-per-atom predictor).

The network and its weights come from the ``chgnet`` wheel (``CHGNet.load()``, model 0.3.0, trained on MPtrj); this
module replaces only CHGNet's input side, which works one pymatgen structure at a time: the atom graph, the
undirected-bond bookkeeping and the bond-angle graph are built here for a whole :class:`CrystalBatch` with torch
ops, kept between :meth:`CHGNetPotential.rebuild` calls, and the interatomic vectors are recomputed differentiably
from ``lattice`` and ``frac_coords`` at every call. CHGNet's own layers (embeddings, bases, convolutions, readout,
composition model) are then applied unchanged.

CHGNet's graph, as its ``CrystalGraphConverter`` builds it:

- atom graph: every directed edge ``i → j + image`` within ``atom_graph_cutoff`` (6 Å for 0.3.0); the two directions
  ``(i, j, n)`` and ``(j, i, −n)`` form one undirected bond, which carries the radial bases and bond features;
- bond graph: every ordered pair of distinct directed edges leaving the same atom whose lengths are both below
  ``bond_graph_cutoff`` (3 Å) is an angle ``[atom, bond 1, bond 2]``.

Both radial bases vanish identically beyond their cutoffs (CHGNet's polynomial envelope is clamped to zero there),
so edges searched with an extra ``skin`` contribute exactly nothing until they come within the cutoff: a graph built
with a skin stays exact while no atom moves more than ``skin / 2`` relative to a neighbour.

Soft species: the atom embedding is ``probs[:, :94] @ embedding.weight`` and the composition model (AtomRef, a
per-element energy) is mixed the same way, so the energy is differentiable in ``species_probs`` and equals the
hard model for one-hot probabilities. CHGNet covers H–Pu (Z ≤ 94); probability on Am–Cf is ignored, and a crystal
whose most likely element is beyond Pu is rejected.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from functools import lru_cache, partial
from importlib import metadata
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from smoacs.crystal.batch import CrystalBatch
from smoacs.crystal.neighbors import NeighborList, build_neighbor_list, lexicographic_keys
from smoacs.errors import PredictorError
from smoacs.predictors.base import PredictorEntry, PredictorInfo
from smoacs.predictors.potential import EV_PER_A3_IN_GPA, PotentialOutput

if TYPE_CHECKING:
    from chgnet.model import CHGNet

CHGNET_ELEMENTS = 94
"""CHGNet's embedding covers H … Pu."""


@lru_cache(maxsize=4)
def load_chgnet(model_name: str = "0.3.0") -> CHGNet:
    """The pretrained CHGNet from the ``chgnet`` wheel, loaded once per process on the CPU, banners silenced.

    The returned module is shared by every caller (frozen, evaluation mode); copy it before changing its dtype.
    """
    try:
        from chgnet.model import CHGNet
    except ImportError:
        raise PredictorError('the chgnet predictor needs the chgnet package: pip install "smoacs[relax]"') from None
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = CHGNet.load(model_name=model_name, use_device="cpu", verbose=False)
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


@dataclass(frozen=True)
class CHGNetGraph:
    """CHGNet's graphs for one batch (indices only; geometry is read at every call).

    Attributes:
        center: ``[n_directed]`` centre atom of each directed edge.
        neighbor: ``[n_directed]`` neighbour atom.
        image: ``[n_directed, 3]`` neighbour image in lattice units (float).
        edge_crystal: ``[n_directed]`` crystal of each directed edge.
        directed2undirected: ``[n_directed]`` undirected bond of each directed edge.
        undirected2directed: ``[n_undirected]`` one directed edge of each bond.
        angle_edges: ``[n_angles, 2]`` the two directed edges (leaving the same atom) of each angle.
        bond_graph: ``[n_angles, 3]`` CHGNet's ``[atom, bond 1, bond 2]`` (bonds undirected).
    """

    center: Tensor
    neighbor: Tensor
    image: Tensor
    edge_crystal: Tensor
    directed2undirected: Tensor
    undirected2directed: Tensor
    angle_edges: Tensor
    bond_graph: Tensor

    @property
    def atom_graph(self) -> Tensor:
        """``[n_directed, 2]`` CHGNet's ``[centre, neighbour]`` adjacency list."""
        return torch.stack([self.center, self.neighbor], dim=1)


@dataclass(frozen=True)
class CHGNetTrunk:
    """CHGNet's representation of a batch (for heads trained on top of the frozen network).

    Attributes:
        atom_layers: per-atom features ``[N, 64]``: the element embedding, then the output of each atom convolution.
        energy_per_atom: ``[B]`` CHGNet energy per atom, eV/atom.
    """

    atom_layers: tuple[Tensor, ...]
    energy_per_atom: Tensor


def _pair_directions(center: Tensor, neighbor: Tensor, image: Tensor) -> tuple[Tensor, Tensor]:
    """Undirected id of each directed edge (``(i, j, n)`` ~ ``(j, i, −n)``) and a mask of the edges that paired."""
    img = torch.round(image).long()
    nonzero = img != 0
    first = torch.gather(img, 1, nonzero.long().argmax(dim=1, keepdim=True)).squeeze(1)  # first nonzero component
    forward = (center < neighbor) | ((center == neighbor) & (first > 0))
    lo = torch.where(forward, center, neighbor)
    hi = torch.where(forward, neighbor, center)
    canonical = torch.where(forward[:, None], img, -img)
    key = lexicographic_keys(torch.cat([lo[:, None], hi[:, None], canonical], dim=1))
    rows = {"dim": 0} if key.dim() == 2 else {}  # the unpacked fallback
    _, undirected, counts = torch.unique(key, return_inverse=True, return_counts=True, **rows)
    return undirected, counts[undirected] == 2


def _angle_pairs(center: Tensor, short: Tensor, n_atoms_total: int) -> Tensor:
    """``[n_angles, 2]`` ordered pairs of distinct short directed edges leaving the same atom (edges sorted by centre)."""
    edges = torch.nonzero(short).flatten()
    per_atom = torch.bincount(center[edges], minlength=n_atoms_total)
    starts = torch.cumsum(per_atom, 0) - per_atom
    squares = per_atom * per_atom
    owner = torch.repeat_interleave(torch.arange(n_atoms_total, device=center.device), squares)
    local = torch.arange(int(squares.sum()), device=center.device) - torch.repeat_interleave(
        torch.cumsum(squares, 0) - squares, squares
    )
    size = per_atom[owner]
    first, second = local // size, local % size
    keep = first != second
    base = starts[owner[keep]]
    return torch.stack([edges[base + first[keep]], edges[base + second[keep]]], dim=1)


@torch.no_grad()
def build_chgnet_graph(crystals: CrystalBatch, atom_cutoff: float, bond_cutoff: float, skin: float = 0.0) -> CHGNetGraph:
    """Build CHGNet's atom and bond graphs for the whole batch from its current geometry.

    Args:
        crystals: the batch (coordinates need not be wrapped).
        atom_cutoff: atom-graph radius, Å.
        bond_cutoff: bond-graph radius, Å.
        skin: extra search radius, Å, for both graphs (edges beyond the cutoffs contribute zero).
    """
    lattice, frac = crystals.lattice.detach().double(), crystals.frac_coords.detach().double()
    found: NeighborList = build_neighbor_list(
        lattice, frac, crystals.crystal_idx, crystals.n_atoms, atom_cutoff + skin, max_neighbors=None
    )
    undirected, paired = _pair_directions(found.center, found.neighbor, found.image)
    center, neighbor, image = found.center[paired], found.neighbor[paired], found.image[paired]
    undirected = torch.unique(undirected[paired], return_inverse=True)[1]
    d2u = undirected
    n_bonds = int(d2u.max()) + 1 if len(d2u) else 0
    u2d = torch.full((n_bonds,), len(d2u), dtype=torch.long, device=d2u.device)
    u2d = u2d.scatter_reduce(0, d2u, torch.arange(len(d2u), device=d2u.device), reduce="amin")  # first direction
    edge_crystal = crystals.crystal_idx[center]
    delta = frac[neighbor] + image - frac[center]
    length = torch.einsum("ei,eij->ej", delta, lattice[edge_crystal]).norm(dim=-1)
    angle_edges = _angle_pairs(center, length < bond_cutoff + skin, frac.shape[0])
    bond_graph = torch.stack([center[angle_edges[:, 0]], d2u[angle_edges[:, 0]], d2u[angle_edges[:, 1]]], dim=1)
    return CHGNetGraph(center, neighbor, image, edge_crystal, d2u, u2d, angle_edges, bond_graph)


def _cast(tensor: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    return None if tensor is None else tensor.to(dtype)


def _first_linear(mlp: torch.nn.Module) -> tuple[torch.nn.Linear, list[torch.nn.Module]]:
    """The first Linear of a chgnet ``MLP`` and the modules after it."""
    layers = list(mlp.layers)
    index = next(i for i, layer in enumerate(layers) if isinstance(layer, torch.nn.Linear))
    return layers[index], layers[index + 1 :]


def _gated(gated: torch.nn.Module, blocks: list[Tensor], gathers: list[Tensor | None]) -> Tensor:
    """chgnet's ``GatedMLP`` on the concatenation of gathered blocks, without forming the concatenation.

    ``Linear(cat(x_k[idx_k]))`` equals ``Σ_k (x_k @ W_kᵀ)[idx_k] + b``: each block is projected once per row of its
    own table (atoms, bonds) and then gathered, instead of projecting every gathered row (edges, angles).
    ``gathers[k]`` is the index of block k (None: already one row per output row).
    """
    core_linear, core_rest = _first_linear(gated.mlp_core)
    gate_linear, gate_rest = _first_linear(gated.mlp_gate)
    weight = torch.cat([core_linear.weight, gate_linear.weight], dim=0)  # [2·out, in]
    bias = torch.cat([core_linear.bias, gate_linear.bias])
    starts = [0]
    for block in blocks:
        starts.append(starts[-1] + block.shape[1])
    hidden: Tensor | None = None
    direct: list[tuple[Tensor, Tensor]] = []
    for k, (block, index) in enumerate(zip(blocks, gathers, strict=True)):
        w = weight[:, starts[k] : starts[k + 1]]
        if index is None:
            direct.append((block, w))
            continue
        table = torch.addmm(bias, block, w.T) if hidden is None else block @ w.T  # the bias rides on the first table
        term = torch.index_select(table, 0, index)
        hidden = term if hidden is None else hidden.add_(term)  # fresh gather output: safe to accumulate in place
    assert hidden is not None
    for block, w in direct:
        hidden = torch.addmm(hidden, block, w.T)
    core, gate = hidden.chunk(2, dim=1)
    for layer in core_rest:
        core = layer(core)
    for layer in gate_rest:
        gate = layer(gate)
    if gated.norm is not None:
        core, gate = gated.bn1(core), gated.bn2(gate)
    return gated.activation(core) * gated.sigmoid(gate)


def _sum_rows(values: Tensor, owners: Tensor, n_owners: int) -> Tensor:
    return values.new_zeros(n_owners, values.shape[1]).index_add(0, owners, values)


def _atom_conv(layer: torch.nn.Module, atom_feas: Tensor, bond_feas: Tensor, bond_weights: Tensor, graph: CHGNetGraph) -> Tensor:
    """chgnet's ``AtomConv`` (message [centre, bond, neighbour] on directed edges), projections hoisted."""
    messages = _gated(
        layer.twoBody_atom, [atom_feas, bond_feas, atom_feas], [graph.center, graph.directed2undirected, graph.neighbor]
    )
    messages = messages * torch.index_select(bond_weights, 0, graph.directed2undirected)
    new = _sum_rows(messages, graph.center, atom_feas.shape[0])
    if layer.use_mlp_out:
        new = layer.mlp_out(new)
    if layer.resnet:
        new = new + atom_feas
    return new if layer.atom_norm is None else layer.atom_norm(new)


def _bond_conv(
    layer: torch.nn.Module, atom_feas: Tensor, bond_feas: Tensor, bond_weights: Tensor, angle_feas: Tensor, graph: CHGNetGraph
) -> Tensor:
    """chgnet's ``BondConv`` (message [bond 1, bond 2, angle, atom] on angles), projections hoisted."""
    bg = graph.bond_graph
    update = _gated(layer.twoBody_bond, [bond_feas, bond_feas, angle_feas, atom_feas], [bg[:, 1], bg[:, 2], None, bg[:, 0]])
    update = update * torch.index_select(bond_weights, 0, bg[:, 1]) * torch.index_select(bond_weights, 0, bg[:, 2])
    new = _sum_rows(update, bg[:, 1], bond_feas.shape[0])
    if layer.use_mlp_out:
        new = layer.mlp_out(new)
    if layer.resnet:
        new = new + bond_feas
    return new if layer.bond_norm is None else layer.bond_norm(new)


def _angle_update(layer: torch.nn.Module, atom_feas: Tensor, bond_feas: Tensor, angle_feas: Tensor, graph: CHGNetGraph) -> Tensor:
    """chgnet's ``AngleUpdate`` ([bond 1, bond 2, angle, atom] on angles), projections hoisted."""
    bg = graph.bond_graph
    new = _gated(layer.twoBody_bond, [bond_feas, bond_feas, angle_feas, atom_feas], [bg[:, 1], bg[:, 2], None, bg[:, 0]])
    if layer.resnet:
        new = new + angle_feas
    return new if layer.angle_norm is None else layer.angle_norm(new)


def _info(model_name: str) -> PredictorInfo:
    try:
        version = metadata.version("chgnet")
    except metadata.PackageNotFoundError:
        version = "not installed"
    return PredictorInfo(
        name="chgnet",
        property="energy_per_atom",
        unit="eV/atom",
        training_data="MPtrj (Materials Project relaxation trajectories, PBE/PBE+U)",
        source=f"chgnet {version} wheel, CHGNet {model_name} weights; Modified BSD (3-clause) licence, LBNL/UC Berkeley",
        description="CHGNet universal potential: total energy per atom (forces, stress via compute)",
        weights_package="chgnet",
        weights_version=version,
    )


class CHGNetPotential(torch.nn.Module):
    """CHGNet on a whole :class:`CrystalBatch`: a ``Potential`` and an energy-per-atom ``Predictor``.

    The graph is built by :meth:`rebuild` (or automatically, when the batch changes shape or identity) and reused
    until the next rebuild; distances and angles are recomputed from the current geometry in every call.

    Args:
        info: registry info (default: the ``chgnet`` entry).
        model_name: CHGNet checkpoint in the wheel (``"0.3.0"``).
        skin: extra search radius for the neighbour graphs, Å (exact while atoms move less than ``skin / 2``
            between rebuilds; costs more edges and angles).
        fused: evaluate CHGNet's convolutions with their first linear layer split by input block and applied
            before the gathers (same weights, same function, ~3× fewer operations); False calls chgnet's own
            layer modules (the reference path).
    """

    def __init__(
        self, info: PredictorInfo | None = None, model_name: str = "0.3.0", skin: float = 0.0, fused: bool = True
    ) -> None:
        super().__init__()
        if skin < 0:
            raise PredictorError(f"chgnet: skin must be ≥ 0 Å, got {skin}")
        self.info = info or _info(model_name)
        self.model = load_chgnet(model_name)
        self.skin = float(skin)
        self.fused = fused
        self.atom_cutoff = float(self.model.model_args["atom_graph_cutoff"])
        self.bond_cutoff = float(self.model.model_args["bond_graph_cutoff"])
        self._graph: CHGNetGraph | None = None
        self._graph_atoms = -1
        self._graph_sizes: Tensor | None = None

    # --- graph ---------------------------------------------------------------------------------------------------

    def rebuild(self, crystals: CrystalBatch) -> None:
        """Rebuild the atom and bond graphs from the current geometry (no gradient)."""
        top = crystals.species_probs.detach().argmax(dim=-1)
        if bool((top >= CHGNET_ELEMENTS).any()):
            raise PredictorError("chgnet covers H–Pu only; a site's most likely element is beyond Pu")
        self._graph = build_chgnet_graph(crystals, self.atom_cutoff, self.bond_cutoff, self.skin)
        self._graph_atoms = crystals.frac_coords.shape[0]
        self._graph_sizes = crystals.n_atoms

    def graph(self, crystals: CrystalBatch) -> CHGNetGraph:
        """The current graph, rebuilt first if the batch does not match it."""
        stale = self._graph_sizes is None or self._graph_sizes.data_ptr() != crystals.n_atoms.data_ptr()
        if self._graph is None or self._graph_atoms != crystals.frac_coords.shape[0] or stale:
            self.rebuild(crystals)
        assert self._graph is not None
        return self._graph

    # --- model ---------------------------------------------------------------------------------------------------

    def _energy(
        self,
        cell: Tensor,
        frac: Tensor,
        probs: Tensor,
        crystals: CrystalBatch,
        graph: CHGNetGraph,
        track_positions: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """Total energy ``[B]`` (eV) and Cartesian positions ``[N, 3]`` (the force variable) from the (strained) cells."""
        m = self.model
        layers, positions = self._atom_layers(cell, frac, probs, crystals, graph, track_positions)
        site_energy = m.mlp(m.readout_norm(layers[-1])).squeeze(-1)
        site_energy = site_energy + probs[:, :CHGNET_ELEMENTS] @ m.composition_model.fc.weight[0]  # AtomRef, per element
        energy = torch.zeros(crystals.n_crystals, dtype=site_energy.dtype, device=site_energy.device)
        return energy.index_add(0, crystals.crystal_idx, site_energy), positions

    def _atom_layers(
        self,
        cell: Tensor,
        frac: Tensor,
        probs: Tensor,
        crystals: CrystalBatch,
        graph: CHGNetGraph,
        track_positions: bool = False,
    ) -> tuple[list[Tensor], Tensor]:
        """Per-atom features ``[N, 64]`` of the embedding and after each atom convolution (CHGNet's trunk), and the
        Cartesian positions ``[N, 3]``."""
        m = self.model
        positions = torch.einsum("ni,nij->nj", frac, torch.index_select(cell, 0, crystals.crystal_idx))
        if track_positions and not positions.requires_grad:
            positions.requires_grad_()  # no input needs a gradient: positions are then a leaf
        vectors = (
            torch.index_select(positions, 0, graph.neighbor)
            - torch.index_select(positions, 0, graph.center)
            + torch.einsum("ei,eij->ej", graph.image.to(cell.dtype), torch.index_select(cell, 0, graph.edge_crystal))
        )
        lengths = vectors.norm(dim=-1)
        bond_lengths = torch.index_select(lengths, 0, graph.undirected2directed)
        rbf_ag = m.bond_basis_expansion.rbf_expansion_ag(bond_lengths)
        rbf_bg = m.bond_basis_expansion.rbf_expansion_bg(bond_lengths)

        weights = probs[:, :CHGNET_ELEMENTS]
        atom_feas = weights @ m.atom_embedding.embedding.weight
        bond_feas = m.bond_embedding(rbf_ag)
        bond_weights_ag = m.bond_weights_ag(rbf_ag)
        bond_weights_bg = m.bond_weights_bg(rbf_bg)
        has_angles = graph.angle_edges.shape[0] > 0
        if has_angles:
            units = vectors / lengths[:, None]
            angle_feas = m.angle_embedding(
                m.angle_basis_expansion(
                    torch.index_select(units, 0, graph.angle_edges[:, 0]),
                    torch.index_select(units, 0, graph.angle_edges[:, 1]),
                )
            )
        layers = [atom_feas]
        n_convs = len(m.atom_conv_layers)
        for k in range(n_convs - 1):
            atom_feas = self._atom_layer(k, atom_feas, bond_feas, bond_weights_ag, graph)
            layers.append(atom_feas)
            if has_angles:
                bond_feas = self._bond_layer(k, atom_feas, bond_feas, bond_weights_bg, angle_feas, graph)
                if k < n_convs - 2:  # the last angle update feeds no later layer (chgnet computes it anyway)
                    angle_feas = self._angle_layer(k, atom_feas, bond_feas, angle_feas, graph)
        layers.append(self._atom_layer(n_convs - 1, atom_feas, bond_feas, bond_weights_ag, graph))
        return layers, positions

    def _atom_layer(self, k: int, atom_feas: Tensor, bond_feas: Tensor, weights: Tensor, graph: CHGNetGraph) -> Tensor:
        layer = self.model.atom_conv_layers[k]
        if self.fused:
            return _atom_conv(layer, atom_feas, bond_feas, weights, graph)
        return layer(
            atom_feas=atom_feas,
            bond_feas=bond_feas,
            bond_weights=weights,
            atom_graph=graph.atom_graph,
            directed2undirected=graph.directed2undirected,
        )

    def _bond_layer(self, k: int, atom_feas: Tensor, bond_feas: Tensor, weights: Tensor, angle_feas: Tensor, graph: CHGNetGraph) -> Tensor:
        layer = self.model.bond_conv_layers[k]
        if self.fused:
            return _bond_conv(layer, atom_feas, bond_feas, weights, angle_feas, graph)
        return layer(atom_feas=atom_feas, bond_feas=bond_feas, bond_weights=weights, angle_feas=angle_feas, bond_graph=graph.bond_graph)

    def _angle_layer(self, k: int, atom_feas: Tensor, bond_feas: Tensor, angle_feas: Tensor, graph: CHGNetGraph) -> Tensor:
        layer = self.model.angle_layers[k]
        if self.fused:
            return _angle_update(layer, atom_feas, bond_feas, angle_feas, graph)
        return layer(atom_feas=atom_feas, bond_feas=bond_feas, angle_feas=angle_feas, bond_graph=graph.bond_graph)

    def _inputs(self, crystals: CrystalBatch, keep_graph: bool) -> tuple[Tensor, Tensor, Tensor]:
        dtype = self.model.atom_embedding.embedding.weight.dtype
        tensors = (crystals.lattice, crystals.frac_coords, crystals.species_probs)
        if not keep_graph:
            tensors = tuple(t.detach() for t in tensors)
        lattice, frac, probs = (t.to(dtype) for t in tensors)
        return lattice, frac, probs

    def compute(
        self, crystals: CrystalBatch, forces: bool = True, stress: bool = True, create_graph: bool = False
    ) -> PotentialOutput:
        """Energy (eV), forces (eV/Å) and stress (GPa, σ = (1/V) ∂E/∂ε) of every crystal, in one batched pass.

        With ``create_graph=True`` every output stays differentiable in ``lattice``, ``frac_coords`` and
        ``species_probs``; otherwise all are detached. Outputs have the dtype of ``crystals.lattice``.
        """
        graph = self.graph(crystals)
        out_dtype = crystals.lattice.dtype
        with torch.enable_grad():
            lattice, frac, probs = self._inputs(crystals, create_graph)
            strain = torch.zeros_like(lattice, requires_grad=stress)
            eye = torch.eye(3, dtype=lattice.dtype, device=lattice.device)
            cell = lattice @ (eye + strain) if stress else lattice
            energy, positions = self._energy(cell, frac, probs, crystals, graph, track_positions=forces)
            wrt = ([positions] if forces else []) + ([strain] if stress else [])
            grads = list(torch.autograd.grad(energy.sum(), wrt, create_graph=create_graph)) if wrt else []
        force = -grads.pop(0) if forces else None
        sigma = None
        if stress:
            volume = torch.linalg.det(lattice).abs()
            sigma = grads.pop(0) / volume[:, None, None] * EV_PER_A3_IN_GPA
        if not create_graph:
            energy = energy.detach()
        return PotentialOutput(energy.to(out_dtype), crystals.n_atoms, _cast(force, out_dtype), _cast(sigma, out_dtype))

    def trunk(self, crystals: CrystalBatch) -> CHGNetTrunk:
        """CHGNet's per-atom features and energy per atom, differentiable in lattice, coordinates and species."""
        graph = self.graph(crystals)
        lattice, frac, probs = self._inputs(crystals, keep_graph=True)
        layers, _ = self._atom_layers(lattice, frac, probs, crystals, graph)
        m = self.model
        site_energy = m.mlp(m.readout_norm(layers[-1])).squeeze(-1) + probs[:, :CHGNET_ELEMENTS] @ m.composition_model.fc.weight[0]
        energy = torch.zeros(crystals.n_crystals, dtype=site_energy.dtype, device=site_energy.device)
        energy = energy.index_add(0, crystals.crystal_idx, site_energy)
        return CHGNetTrunk(tuple(layers), energy / crystals.n_atoms.to(energy.dtype))

    # --- Predictor protocol ----------------------------------------------------------------------------------------

    def forward(self, crystals: CrystalBatch) -> Tensor:
        """``[n_crystals]`` energy per atom, eV/atom, differentiable in lattice, coordinates and species."""
        graph = self.graph(crystals)
        lattice, frac, probs = self._inputs(crystals, keep_graph=True)
        energy, _ = self._energy(lattice, frac, probs, crystals, graph)
        return (energy / crystals.n_atoms.to(energy.dtype)).to(crystals.lattice.dtype)

    def final(self, crystals: CrystalBatch) -> Tensor:
        """Energy per atom of discrete crystals (the same network; eV/atom)."""
        return self(crystals)


class CHGNetPressure(CHGNetPotential):
    """CHGNet's hydrostatic pressure −tr(σ)/3 in GPa as a predictor (an objective term on the potential's output).

    Differentiable in lattice, coordinates and species (second derivatives of the energy), so e.g.
    ``{kind: range, property: pressure, range: [-1, 1]}`` (with ``predictors: {pressure: chgnet-pressure}``) drives
    cells towards mechanical equilibrium.
    """

    def forward(self, crystals: CrystalBatch) -> Tensor:
        """``[n_crystals]`` pressure, GPa (positive: the cell wants to expand)."""
        return self.compute(crystals, forces=False, stress=True, create_graph=True).pressure

    def final(self, crystals: CrystalBatch) -> Tensor:
        """Pressure of discrete crystals, GPa."""
        return self(crystals)


class CHGNetMaxForce(CHGNetPotential):
    """CHGNet's largest residual atomic force in each crystal, eV/Å, as a predictor (e.g. ``kind: below, threshold: 0.1``)."""

    def forward(self, crystals: CrystalBatch) -> Tensor:
        """``[n_crystals]`` max |F|, eV/Å."""
        return self.compute(crystals, forces=True, stress=False, create_graph=True).max_force(crystals.crystal_idx)

    def final(self, crystals: CrystalBatch) -> Tensor:
        """Max residual force of discrete crystals, eV/Å."""
        return self(crystals)


def _derived_info(name: str, prop: str, unit: str, description: str) -> PredictorInfo:
    base = _info("0.3.0")
    return PredictorInfo(name, prop, unit, base.training_data, base.source, description, base.weights_package, base.weights_version)


_PRESSURE = _derived_info("chgnet-pressure", "pressure", "GPa", "CHGNet hydrostatic pressure −tr(σ)/3 (objective term)")
_MAX_FORCE = _derived_info("chgnet-max-force", "max_force", "eV/Å", "CHGNet largest residual atomic force (objective term)")

#: Registry entries (``BUILTIN`` in :mod:`smoacs.predictors.registry`).
ENTRY = PredictorEntry(_info("0.3.0"), CHGNetPotential)
ENTRIES: dict[str, PredictorEntry] = {
    "chgnet": ENTRY,
    "chgnet-pressure": PredictorEntry(_PRESSURE, partial(CHGNetPressure, _PRESSURE)),
    "chgnet-max-force": PredictorEntry(_MAX_FORCE, partial(CHGNetMaxForce, _MAX_FORCE)),
}
