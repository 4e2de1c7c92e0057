"""The ALIGNN network (Choudhary & DeCost, npj Comput. Mater. 7, 185, 2021) in plain torch, batched over crystals.

One class serves both checkpoint families; they differ only in the normalisation layer:

* ``norm="batch"``: the legacy ``alignn.models.alignn.ALIGNN`` (BatchNorm1d, always evaluated with the stored
  running statistics, eps 1e-5, so a batch of one crystal or a call in training mode cannot change the output);
* ``norm="layer"``: the pure-PyTorch ``alignn.models.alignn_atomwise_pure.ALIGNNAtomWisePure`` (LayerNorm, eps 1e-5).

Module and parameter names match the originals, so their state dicts load strictly. Message passing is
``index_select`` + ``index_add`` on the edge lists of :class:`~smoacs.predictors.alignn.graphs.ALIGNNGraph`:

* ``RBF(x) = exp(−γ (x − c_k)²)`` with the stored centres ``c`` and ``γ = 1 / mean(diff(c))`` (float32, as alignn);
  bonds: 80 centres on [0, 8] Å, angle cosines: 40 centres on [−1, 1];
* ``MLP = SiLU(Norm(Linear))``; embeddings ``x = MLP(atom features)``, ``y = MLP(MLP(RBF(|r|)))``,
  ``z = MLP(MLP(RBF(cos)))``;
* edge-gated convolution on a graph (src → dst): ``m = W_s h[src] + W_d h[dst] + W_e e``,
  ``h'_i = h_i + SiLU(Norm(U h_i + Σ_{dst=i} σ(m) ⊙ V h[src] / (Σ_{dst=i} σ(m) + 1e-6)))``,
  ``e' = e + SiLU(Norm(m))``;
* ``alignn_layers`` × (conv on the atom graph, then conv on the line graph with the updated bond features), then
  ``gcn_layers`` × conv on the atom graph; mean over each crystal's atoms; ``fc``; link (identity, exp, sigmoid).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

NormKind = Literal["batch", "layer"]
Link = Literal["identity", "log", "logit"]
NORM_EPS = 1e-5


@dataclass(frozen=True)
class ALIGNNHyper:
    """Network sizes read from a checkpoint's ``config.json`` (``config["model"]``).

    Attributes:
        alignn_layers: ALIGNN (atom graph + line graph) layers.
        gcn_layers: edge-gated layers on the atom graph only.
        atom_input_features: atom feature length (92 for CGCNN features).
        edge_input_features: bond-length RBF bins (80).
        triplet_input_features: angle-cosine RBF bins (40).
        embedding_features: width of the first RBF MLP (64).
        hidden_features: width of every convolution (256).
        output_features: outputs of ``fc`` (1 for a scalar property).
        link: output transform, ``identity``, ``log`` (exp applied) or ``logit`` (sigmoid applied).
    """

    alignn_layers: int = 4
    gcn_layers: int = 4
    atom_input_features: int = 92
    edge_input_features: int = 80
    triplet_input_features: int = 40
    embedding_features: int = 64
    hidden_features: int = 256
    output_features: int = 1
    link: Link = "identity"


class FrozenBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d that always normalises with its running statistics (the checkpoint's), in any module mode."""

    def forward(self, x: Tensor) -> Tensor:
        """``(x − mean) · w / sqrt(var + eps) + b``, much cheaper to differentiate than ``F.batch_norm``."""
        scale = self.weight / torch.sqrt(self.running_var + self.eps)
        return torch.addcmul(self.bias, x - self.running_mean, scale)


def make_norm(kind: NormKind, features: int) -> nn.Module:
    """The normalisation layer of a checkpoint family."""
    return FrozenBatchNorm1d(features, eps=NORM_EPS) if kind == "batch" else nn.LayerNorm(features, eps=NORM_EPS)


class RBFExpansion(nn.Module):
    """Gaussian expansion ``exp(−γ (x − c)²)`` on ``bins`` centres in [vmin, vmax] (buffer ``centers``)."""

    def __init__(self, vmin: float, vmax: float, bins: int) -> None:
        super().__init__()
        self.register_buffer("centers", torch.linspace(vmin, vmax, bins))
        self._gamma: float | None = None

    def gamma(self) -> float:
        """``1 / mean(diff(centers))`` computed in float32 like alignn (γ = 9.875 for 80 bins on [0, 8])."""
        if self._gamma is None:  # cached: no device synchronisation per forward pass
            centers = self.centers.detach().cpu().float().numpy()
            self._gamma = float(np.float32(1.0) / np.diff(centers).mean(dtype=np.float32))
        return self._gamma

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - torch.nn.Module hook
        self._gamma = None  # new centres: recompute γ
        super()._load_from_state_dict(*args, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        """``[n, bins]`` expansion of ``[n]`` values."""
        return torch.exp(-self.gamma() * (x[:, None] - self.centers) ** 2)


class MLPLayer(nn.Module):
    """``SiLU(Norm(Linear(x)))``; submodules ``layer.0`` (Linear) and ``layer.1`` (norm) as in alignn."""

    def __init__(self, in_features: int, out_features: int, norm: NormKind) -> None:
        super().__init__()
        self.layer = nn.Sequential(nn.Linear(in_features, out_features), make_norm(norm, out_features), nn.SiLU())

    def forward(self, x: Tensor) -> Tensor:
        """``[n, out_features]``."""
        return self.layer(x)


class EdgeGatedGraphConv(nn.Module):
    """Residual edge-gated graph convolution; messages flow src → dst and are aggregated at dst."""

    def __init__(self, features: int, norm: NormKind) -> None:
        super().__init__()
        self.src_gate = nn.Linear(features, features)
        self.dst_gate = nn.Linear(features, features)
        self.edge_gate = nn.Linear(features, features)
        self.bn_edges = make_norm(norm, features)
        self.src_update = nn.Linear(features, features)
        self.dst_update = nn.Linear(features, features)
        self.bn_nodes = make_norm(norm, features)

    def forward(self, src: Tensor, dst: Tensor, nodes: Tensor, edges: Tensor) -> tuple[Tensor, Tensor]:
        """Updated ``(nodes [n, F], edges [e, F])``."""
        m = (
            torch.index_select(self.src_gate(nodes), 0, src)
            + torch.index_select(self.dst_gate(nodes), 0, dst)
            + self.edge_gate(edges)
        )
        sigma = torch.sigmoid(m)
        messages = torch.index_select(self.dst_update(nodes), 0, src) * sigma
        sum_sigma_h = torch.zeros_like(nodes).index_add_(0, dst, messages)
        sum_sigma = torch.zeros_like(nodes).index_add_(0, dst, sigma)
        x = self.src_update(nodes) + sum_sigma_h / (sum_sigma + 1e-6)
        return nodes + F.silu(self.bn_nodes(x)), edges + F.silu(self.bn_edges(m))


class ALIGNNConv(nn.Module):
    """One ALIGNN layer: ``node_update`` on the atom graph, then ``edge_update`` on the line graph."""

    def __init__(self, features: int, norm: NormKind) -> None:
        super().__init__()
        self.node_update = EdgeGatedGraphConv(features, norm)
        self.edge_update = EdgeGatedGraphConv(features, norm)

    def forward(
        self, graph: tuple[Tensor, Tensor, Tensor, Tensor], x: Tensor, y: Tensor, z: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Updated atom, bond and angle features; ``graph = (src, dst, lg_src, lg_dst)``."""
        src, dst, lg_src, lg_dst = graph
        x, m = self.node_update(src, dst, x, y)
        y, z = self.edge_update(lg_src, lg_dst, m, z)
        return x, y, z


class ALIGNNNet(nn.Module):
    """ALIGNN network; :meth:`forward` maps features and bond geometry to ``[n_crystals]`` outputs.

    Args:
        hyper: network sizes and link.
        norm: ``"batch"`` (legacy checkpoints) or ``"layer"`` (pure-PyTorch checkpoints).
        species_table: register the pure model's unused ``_species_table`` buffer (120 × atom features) so its
            state dict loads strictly.
    """

    def __init__(self, hyper: ALIGNNHyper, norm: NormKind, species_table: bool = False) -> None:
        super().__init__()
        self.hyper = hyper
        hidden, embed = hyper.hidden_features, hyper.embedding_features
        self.atom_embedding = MLPLayer(hyper.atom_input_features, hidden, norm)
        self.edge_embedding = nn.Sequential(
            RBFExpansion(0.0, 8.0, hyper.edge_input_features),
            MLPLayer(hyper.edge_input_features, embed, norm),
            MLPLayer(embed, hidden, norm),
        )
        self.angle_embedding = nn.Sequential(
            RBFExpansion(-1.0, 1.0, hyper.triplet_input_features),
            MLPLayer(hyper.triplet_input_features, embed, norm),
            MLPLayer(embed, hidden, norm),
        )
        self.alignn_layers = nn.ModuleList([ALIGNNConv(hidden, norm) for _ in range(hyper.alignn_layers)])
        self.gcn_layers = nn.ModuleList([EdgeGatedGraphConv(hidden, norm) for _ in range(hyper.gcn_layers)])
        self.fc = nn.Linear(hidden, hyper.output_features)
        if species_table:
            self.register_buffer("_species_table", torch.zeros(120, hyper.atom_input_features))

    def forward(
        self,
        atom_features: Tensor,
        bond_length: Tensor,
        cosines: Tensor,
        graph: tuple[Tensor, Tensor, Tensor, Tensor],
        crystal_idx: Tensor,
        n_atoms: Tensor,
    ) -> Tensor:
        """``[n_crystals, output_features]`` outputs (after the link).

        Args:
            atom_features: ``[N, atom_input_features]`` input features.
            bond_length: ``[E]`` bond lengths, Å.
            cosines: ``[T]`` bond-angle cosines of the line-graph edges.
            graph: ``(src [E], dst [E], lg_src [T], lg_dst [T])``.
            crystal_idx: ``[N]`` crystal of each atom.
            n_atoms: ``[C]`` atoms per crystal.
        """
        src, dst = graph[0], graph[1]
        x = self.atom_embedding(atom_features)
        y = self.edge_embedding(bond_length)
        z = self.angle_embedding(cosines)
        for layer in self.alignn_layers:
            x, y, z = layer(graph, x, y, z)
        for conv in self.gcn_layers:
            x, y = conv(src, dst, x, y)
        pooled = x.new_zeros(len(n_atoms), x.shape[1]).index_add(0, crystal_idx, x)
        out = self.fc(pooled / n_atoms[:, None].to(x.dtype))
        if self.hyper.link == "log":
            return torch.exp(out)
        if self.hyper.link == "logit":
            return torch.sigmoid(out)
        return out
