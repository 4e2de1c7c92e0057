"""Predictors trained with ``smoacs train`` and shipped as package data (``predictors/weights/trained/<name>/``).

Each directory holds the weights, the model card ``model.json`` (architecture, hyper-parameters, data hash, val/test
MAE, training time) and the training data's licence; ``weights/trained/README.md`` gives the exact commands.

========================================  ==========================================================================
``chgnet-head-supercon-tc``               BCS superconducting Tc (K), kernel ridge on frozen CHGNet features, JARVIS
                                          supercon train split (the ``superconductor-tc`` preset's predictor)
``cgcnn-supercon-tc``                     BCS superconducting Tc (K), CGCNN, same data (the preset's judge)
``crystalformer-supercon-tc``             BCS superconducting Tc (K), Crystalformer, same data
``cgcnn-perov5-heat-of-formation``        perov-5 heat of formation (eV/atom, GLLB-SC DFT, Castelli's references)
``chgnet-head-perov5-band-gap``           perov-5 direct band gap (eV, GLLB-SC DFT, not PBE): gated kernel ridge on
                                          frozen CHGNet features
========================================  ==========================================================================
"""

from __future__ import annotations

from functools import partial
from importlib import resources
from pathlib import Path

from smoacs.errors import PredictorError
from smoacs.predictors.base import Predictor, PredictorEntry, PredictorInfo
from smoacs.predictors.card import ModelCard

_SUPERCON = "JARVIS-DFT BCS superconductors, CDVAE train split (846); model selection on its val split"
_PEROV5 = "perov-5 (Castelli 2012, GLLB-SC DFT): CDVAE val split (90 % train / 10 % early stopping), tested on its test split"


def model_dir(name: str) -> Path:
    """Directory of a shipped trained model."""
    return Path(str(resources.files("smoacs.predictors") / "weights" / "trained" / name))


def _load(name: str, **options: object) -> Predictor:
    directory = model_dir(name)
    card = ModelCard.read(directory)
    if card.arch == "crystalformer":
        from smoacs.predictors.crystalformer import from_path
    elif card.arch == "cgcnn":
        from smoacs.predictors.cgcnn import from_path
    elif card.arch == "chgnet-head":
        from smoacs.predictors.chgnet_head import from_path
    else:  # pragma: no cover - shipped cards are fixed
        raise PredictorError(f"shipped model {name} has unknown architecture {card.arch!r}")
    return from_path(str(directory), name=name, **options)


def _entry(name: str, data: str, description: str) -> PredictorEntry:
    card = ModelCard.read(model_dir(name))
    test = card.metrics.get("test_mae")
    figures = f"; test MAE {test:.2f} {card.unit}" if test is not None else ""
    source = f"trained with smoacs train (weights/trained/{name}); data: {card.licence}"
    info = PredictorInfo(name, card.property, card.unit, data, source, description + figures, weights_package="smoacs")
    return PredictorEntry(info, partial(_load, name))


#: Registry entries (``BUILTIN`` in :mod:`smoacs.predictors.registry`).
ENTRIES: dict[str, PredictorEntry] = {
    "chgnet-head-supercon-tc": _entry(
        "chgnet-head-supercon-tc", _SUPERCON, "BCS superconducting Tc, kernel ridge on frozen CHGNet features"
    ),
    "cgcnn-supercon-tc": _entry("cgcnn-supercon-tc", _SUPERCON, "BCS superconducting Tc, CGCNN"),
    "crystalformer-supercon-tc": _entry("crystalformer-supercon-tc", _SUPERCON, "BCS superconducting Tc, Crystalformer"),
    "chgnet-head-perov5-band-gap": _entry(
        "chgnet-head-perov5-band-gap", _PEROV5, "perov-5 GLLB-SC band gap (not PBE), gated kernel ridge on CHGNet features"
    ),
    "cgcnn-perov5-heat-of-formation": _entry(
        "cgcnn-perov5-heat-of-formation", _PEROV5, "perov-5 heat of formation (not an MP formation energy), CGCNN"
    ),
}
