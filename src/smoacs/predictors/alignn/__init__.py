"""ALIGNN predictors from user-supplied checkpoints, in plain torch (no DGL, no alignn or jarvis import).

ALIGNN (Choudhary & DeCost, npj Comput. Mater. 7, 185, 2021; PyPI ``alignn``, NIST terms) ships no weights; its
published models are zip files of ``config.json`` + ``best_model.pt`` / ``checkpoint_*.pt``. :func:`from_path` loads
one (zip or directory) as a :class:`~smoacs.predictors.base.Predictor`:

* legacy models (``config["model"]["name"] == "alignn"``, the SMOACS-era figshare models such as
  ``mp_gappbe_alignn`` or ``jv_ehull_alignn``): BatchNorm network and alignn's k-NN graph (12 neighbours within 8 Å,
  ties at the 12th distance included, canonised, cutoff extension), reproduced with jarvis' float64 arithmetic;
* pure-PyTorch ALIGNN-2 models (``"alignn_atomwise_pure"``): LayerNorm network and the directed strict-top-12
  graph of ``build_pure_torch_graph``.

Layout: :mod:`~smoacs.predictors.alignn.graphs` (graphs and line graphs), :mod:`~smoacs.predictors.alignn.network`
(the network), :mod:`~smoacs.predictors.alignn.weights` (zip/directory reading and checks),
:mod:`~smoacs.predictors.alignn.adapters` (the predictor). The registry reaches this family through the path form
``alignn:PATH`` → ``from_path(PATH, property=..., **options)``; nothing is registered by name.
"""

from __future__ import annotations

from smoacs.predictors.alignn.adapters import DEFAULT_PROPERTY, ALIGNNPredictor, from_path
from smoacs.predictors.alignn.graphs import ALIGNNGraph, bond_cosines, build_graph, edge_vectors, legacy_graph, pure_graph
from smoacs.predictors.alignn.network import ALIGNNHyper, ALIGNNNet
from smoacs.predictors.alignn.weights import ALIGNNSettings, load_alignn, read_model_files

__all__ = [
    "DEFAULT_PROPERTY",
    "ALIGNNGraph",
    "ALIGNNHyper",
    "ALIGNNNet",
    "ALIGNNPredictor",
    "ALIGNNSettings",
    "bond_cosines",
    "build_graph",
    "edge_vectors",
    "from_path",
    "legacy_graph",
    "load_alignn",
    "pure_graph",
    "read_model_files",
]
