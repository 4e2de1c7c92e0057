"""MEGNet predictors: an exact PyTorch port of the pretrained megnet 1.3.2 models (Chen et al., 2019; BSD-3-Clause).

Registered names (all accept ``smooth_cutoff=δ`` in Å, an optimisation-only smooth cutoff; the two multi-network
ones also ``batch=auto|loop|batched``, their networks run one after another or as one vmapped call, ``auto``:
batched on CUDA only; see :mod:`smoacs.predictors.megnet.adapters`):

========================================  =====================================================================
``megnet-band-gap``                       2018 PBE band-gap regression gated by the 2018 metal classifier, eV
``megnet-formation-energy``               2019 formation energy, eV/atom (cutoff 5 Å)
``megnet-formation-energy-2018``          2018 formation energy, eV/atom (cutoff 4 Å)
``megnet-bulk-modulus``                   2019 VRH bulk modulus, GPa (model predicts log10)
``megnet-shear-modulus``                  2019 VRH shear modulus, GPa (model predicts log10)
``megnet-efermi``                         2019 Fermi energy, eV
``megnet-mf-band-gap``                    multi-fidelity band gap, 6-model mean, eV; option ``fidelity`` =
                                          ``pbe`` (default), ``gllb``, ``hse`` or ``exp``; the spread via
                                          ``predict_with_uncertainty``
========================================  =====================================================================
"""

from __future__ import annotations

from functools import partial

from smoacs.predictors.base import PredictorEntry, PredictorInfo
from smoacs.predictors.megnet.adapters import (
    FIDELITIES,
    MEGNetBandGap,
    MEGNetEnsemble,
    MEGNetMultiFidelityBandGap,
    MEGNetRegressor,
    cutoff_weight,
)
from smoacs.predictors.megnet.network import MEGNetNet
from smoacs.predictors.megnet.weights import MODEL_KEYS, MEGNetConfig, load_megnet

__all__ = [
    "FIDELITIES",
    "MODEL_KEYS",
    "MEGNetBandGap",
    "MEGNetConfig",
    "MEGNetEnsemble",
    "MEGNetMultiFidelityBandGap",
    "MEGNetNet",
    "MEGNetRegressor",
    "cutoff_weight",
    "load_megnet",
]

_SOURCE = "megnet 1.3.2 sdist, mvl_models/{files} (BSD-3-Clause), converted by scripts/convert_megnet.py"
_MP_2018 = "Materials Project 2018.6.1 (69,239 crystals; Chen et al., Chem. Mater. 2019)"
_MP_2019 = "Materials Project 2019.4.1 (Chen et al., megnet 1.x)"
_MF_2020 = "PBE, GLLB-SC, HSE and experimental band gaps (Chen et al., Nat. Comput. Sci. 2021)"


def _info(name: str, prop: str, unit: str, data: str, files: str, description: str) -> PredictorInfo:
    return PredictorInfo(name, prop, unit, data, _SOURCE.format(files=files), description, weights_package="smoacs")


_BAND_GAP = _info(
    "megnet-band-gap", "band_gap", "eV", _MP_2018,
    "mp-2018.6.1/band_gap_regression.hdf5 + band_classification.hdf5",
    "PBE band gap, 2018 regression gated by the 2018 metal/non-metal classifier",
)  # fmt: skip
#: Registry entries by name (listed in :data:`smoacs.predictors.registry.BUILTIN`).
ENTRIES: dict[str, PredictorEntry] = {_BAND_GAP.name: PredictorEntry(_BAND_GAP, partial(MEGNetBandGap, _BAND_GAP))}

_MF_BAND_GAP = _info(
    "megnet-mf-band-gap", "band_gap", "eV", _MF_2020, "mf_2020/pbe_gllb_hse_exp/{0..5}/best_model.hdf5",
    "multi-fidelity band gap, mean of 6 models; option fidelity = pbe | gllb | hse | exp",
)  # fmt: skip
ENTRIES[_MF_BAND_GAP.name] = PredictorEntry(_MF_BAND_GAP, partial(MEGNetMultiFidelityBandGap, _MF_BAND_GAP))

_REGRESSORS = [
    # name, property, unit, data, model key, 10**y, description
    ("megnet-formation-energy", "formation_energy", "eV/atom", _MP_2019, "mp-2019.4.1/formation_energy", False,
     "formation energy (2019 model, 5 Å cutoff)"),
    ("megnet-formation-energy-2018", "formation_energy", "eV/atom", _MP_2018, "mp-2018.6.1/formation_energy", False,
     "formation energy (2018 model, 4 Å cutoff)"),
    ("megnet-bulk-modulus", "bulk_modulus", "GPa", _MP_2019, "mp-2019.4.1/log10K", True,
     "VRH bulk modulus (2019 model predicts log10)"),
    ("megnet-shear-modulus", "shear_modulus", "GPa", _MP_2019, "mp-2019.4.1/log10G", True,
     "VRH shear modulus (2019 model predicts log10)"),
    ("megnet-efermi", "efermi", "eV", _MP_2019, "mp-2019.4.1/efermi", False, "Fermi energy (2019 model)"),
]  # fmt: skip
for _name, _prop, _unit, _data, _key, _pow10, _desc in _REGRESSORS:
    _regressor_info = _info(_name, _prop, _unit, _data, f"{_key}.hdf5", _desc)
    ENTRIES[_name] = PredictorEntry(_regressor_info, partial(MEGNetRegressor, _regressor_info, _key, _pow10))
