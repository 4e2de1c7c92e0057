"""The MEGNet models of one predictor run as one batched call (vmap over stacked weights) with the loop's results."""

from __future__ import annotations

import pytest
import torch
from pymatgen.core import Structure

from smoacs.crystal.batch import CrystalBatch
from smoacs.errors import PredictorError
from smoacs.predictors.megnet import MEGNetEnsemble
from smoacs.predictors.registry import load_predictor


@pytest.mark.parametrize("spec", ["megnet-mf-band-gap:fidelity=hse", "megnet-band-gap"])
def test_batched_equals_the_loop_values_and_gradients(spec: str, srtio3: Structure, rock_salt: Structure) -> None:
    loop = load_predictor(f"{spec}:batch=loop")
    batched = load_predictor(f"{spec}:batch=batched")
    assert batched.batched(torch.device("cpu")) and not loop.batched(torch.device("cpu"))  # type: ignore[attr-defined]
    outputs = []
    for model in (loop, batched):
        crystals = CrystalBatch.from_structures([srtio3, rock_salt])
        probs = crystals.species_probs.clone().requires_grad_(True)
        lattice = crystals.lattice.clone().requires_grad_(True)
        crystals = CrystalBatch(lattice, crystals.frac_coords, probs, crystals.crystal_idx, crystals.n_atoms)
        raw = model.outputs(crystals, model.graph(crystals))  # type: ignore[attr-defined]
        value = model(crystals)
        grads = torch.autograd.grad(value.sum(), [probs, lattice])
        outputs.append((raw.detach(), value.detach(), *grads, model.final(crystals)))
    for a, b in zip(*outputs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_auto_batches_on_cuda_only_and_single_models_never() -> None:
    model = load_predictor("megnet-mf-band-gap")
    assert not model.batched(torch.device("cpu")) and model.batched(torch.device("cuda"))  # type: ignore[attr-defined]
    single = MEGNetEnsemble(["mp-2019.4.1/efermi"], batch="batched")  # one network: nothing to batch
    assert not single.batched(torch.device("cuda"))
    with pytest.raises(PredictorError, match="batch must be auto, loop or batched"):
        load_predictor("megnet-mf-band-gap:batch=sometimes")
