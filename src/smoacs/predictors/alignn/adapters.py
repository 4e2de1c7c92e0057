"""ALIGNN behind the smoacs :class:`~smoacs.predictors.base.Predictor` protocol.

* species: ``species_probs @ F`` with F the 98 × 92 CGCNN element table (the features alignn's ``"cgcnn"`` option
  uses), so one-hot probabilities give exactly the original input and soft ones stay differentiable;
* geometry: the graph and line graph (indices and images) are built by :meth:`ALIGNNPredictor.rebuild` on the
  optimiser's schedule, without gradients; bond vectors ``(frac[dst] + image − frac[src]) · L``, their lengths and the
  bond-angle cosines are recomputed from the current lattice and coordinates in every forward pass, so gradients
  reach ``lattice``, ``frac_coords`` and ``species_probs``. The legacy model takes its cosines as precomputed inputs
  in alignn; recomputing them from r gives the same values and the chain rule a differentiable port needs.

The network runs in float32 (the checkpoints' precision); inputs of another dtype are cast, the output is returned in
the batch's dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from smoacs.chem.features import cgcnn_features
from smoacs.crystal.batch import CrystalBatch
from smoacs.errors import PredictorError
from smoacs.predictors.alignn.graphs import ALIGNNGraph, bond_cosines, build_graph, edge_vectors
from smoacs.predictors.alignn.network import ALIGNNNet
from smoacs.predictors.alignn.weights import ALIGNNSettings, load_alignn
from smoacs.predictors.base import PredictorInfo

#: Property key of a model loaded without ``property=`` (the model cannot know which smoacs property it predicts).
DEFAULT_PROPERTY = "alignn"


class ALIGNNPredictor(nn.Module):
    """One ALIGNN checkpoint as a differentiable predictor.

    Args:
        net: the loaded network.
        settings: graph settings of the checkpoint.
        info: what the predictor reports.
        three_body_cutoff: pure models only: restrict the line graph to bonds up to this length (Å); None (default)
            uses every bond, as ``alignn.pretrained.get_prediction_pure`` does.
    """

    def __init__(
        self, net: ALIGNNNet, settings: ALIGNNSettings, info: PredictorInfo, three_body_cutoff: float | None = None
    ) -> None:
        super().__init__()
        if three_body_cutoff is not None and settings.kind != "pure":
            raise PredictorError("three_body_cutoff applies to pure ALIGNN models only")
        self.net = net
        self.settings = settings
        self.info = info
        self.three_body_cutoff = three_body_cutoff
        self.register_buffer("element_features", torch.from_numpy(cgcnn_features().copy()))
        self._graph: ALIGNNGraph | None = None
        self._graph_atoms = -1
        self._graph_sizes: Tensor | None = None  # n_atoms of the batch the graph was built for (compared by storage)

    def rebuild(self, crystals: CrystalBatch) -> None:
        """Rebuild graph and line graph from the current geometry (no gradient)."""
        self._graph = build_graph(
            self.settings.kind,
            crystals.lattice.detach(),
            crystals.frac_coords.detach(),
            crystals.crystal_idx,
            crystals.n_atoms,
            self.settings.cutoff,
            self.settings.max_neighbors,
            self.three_body_cutoff,
        )
        self._graph_atoms = crystals.frac_coords.shape[0]
        self._graph_sizes = crystals.n_atoms

    def graph(self, crystals: CrystalBatch) -> ALIGNNGraph:
        """The current graph, rebuilt first if the batch is not the one it was built for."""
        stale = self._graph_sizes is None or self._graph_sizes.data_ptr() != crystals.n_atoms.data_ptr()
        if self._graph is None or self._graph_atoms != crystals.frac_coords.shape[0] or stale:
            self.rebuild(crystals)
        assert self._graph is not None
        return self._graph

    def forward_graph(self, crystals: CrystalBatch, graph: ALIGNNGraph) -> Tensor:
        """``[n_crystals]`` prediction on an explicit graph."""
        dtype = self.element_features.dtype
        atom_features = crystals.species_probs.to(dtype) @ self.element_features
        r = edge_vectors(crystals.lattice, crystals.frac_coords, graph).to(dtype)
        length = torch.linalg.vector_norm(r, dim=-1)
        cosines = bond_cosines(r, graph)
        topology = (graph.src, graph.dst, graph.lg_src, graph.lg_dst)
        out = self.net(atom_features, length, cosines, topology, crystals.crystal_idx, crystals.n_atoms)
        return out[:, 0].to(crystals.lattice.dtype)

    def forward(self, crystals: CrystalBatch) -> Tensor:
        """``[n_crystals]`` prediction in ``info.unit``."""
        return self.forward_graph(crystals, self.graph(crystals))

    def final(self, crystals: CrystalBatch) -> Tensor:
        """Value for discrete crystals: the forward pass (callers rebuild the graph first, as for every predictor)."""
        return self(crystals)


def _info(path: str, settings: ALIGNNSettings, prop: str, unit: str) -> PredictorInfo:
    family = "legacy ALIGNN (BatchNorm)" if settings.kind == "legacy" else "pure-PyTorch ALIGNN (LayerNorm)"
    trained = " / ".join(x for x in (settings.dataset, settings.target) if x) or "unknown (not in config.json)"
    return PredictorInfo(
        name=f"alignn:{path}",
        property=prop,
        unit=unit,
        training_data=trained,
        source=f"user-supplied checkpoint {path}",
        description=f"{family}, target {settings.target or 'unknown'}",
    )


def from_path(path: str, property: str | None = None, **options: object) -> ALIGNNPredictor:  # noqa: A002
    """Load an ALIGNN model from a zip file or directory (``config.json`` + ``best_model.pt``/``checkpoint_*.pt``).

    The family (legacy or pure) is detected from ``config["model"]["name"]``.

    Args:
        path: the zip file or directory.
        property: the smoacs property key it predicts (e.g. ``"e_hull"``); default :data:`DEFAULT_PROPERTY`.
        options: ``unit`` (str, default "" = unknown), ``device`` (default ``"cpu"``) and, for pure models,
            ``three_body_cutoff`` (Å).

    Returns:
        The predictor in evaluation mode, parameters frozen.
    """
    unknown = sorted(set(options) - {"unit", "three_body_cutoff", "device"})
    if unknown:
        raise PredictorError(
            f"unknown ALIGNN predictor option(s) {', '.join(unknown)}; known: unit, three_body_cutoff, device"
        )
    unit = options.get("unit", "")
    cutoff = options.get("three_body_cutoff")
    if not isinstance(unit, str):
        raise PredictorError(f"ALIGNN option unit must be text, got {unit!r}")
    if cutoff is not None and (isinstance(cutoff, bool) or not isinstance(cutoff, int | float) or cutoff <= 0):
        raise PredictorError(f"ALIGNN option three_body_cutoff must be a positive length in Å, got {cutoff!r}")
    net, settings = load_alignn(path)
    prop = DEFAULT_PROPERTY if property is None else property
    info = _info(str(path), settings, prop, unit)  # the path exactly as given: it is the predictor's name
    predictor = ALIGNNPredictor(net, settings, info, None if cutoff is None else float(cutoff))
    predictor.eval()
    for parameter in predictor.parameters():
        parameter.requires_grad_(False)
    return predictor.to(options.get("device", "cpu"))  # type: ignore[arg-type]
