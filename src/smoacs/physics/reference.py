"""CHGNet through its own pipeline, as a :class:`~smoacs.predictors.potential.Potential` (the correctness reference).

Every call converts the batch to pymatgen structures and hands them to ``CHGNet.predict_structure``: chgnet builds
each crystal's graph on its own (one structure at a time) and runs the network over chunks of ``batch_size``. So
the numbers are exactly those of CHGNet's ASE calculator, at the cost of the per-structure graph building — use it
to check a batched adapter or the relaxer, not for speed. Needs the optional ``chgnet`` package (weights ship in
its wheel; nothing is downloaded).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any

import torch

from smoacs.crystal.batch import CrystalBatch
from smoacs.errors import PredictorError
from smoacs.predictors.base import PredictorInfo
from smoacs.predictors.potential import PotentialOutput


class CHGNetReferencePotential:
    """CHGNet 0.3.0 energies (eV), forces (eV/Å) and stresses (GPa, ASE sign) via ``CHGNet.predict_structure``.

    Args:
        batch_size: structures per network call inside chgnet.
        model: an already loaded ``chgnet.model.CHGNet`` (default: ``CHGNet.load()``, the wheel's weights).
    """

    def __init__(self, batch_size: int = 64, model: Any = None) -> None:  # noqa: ANN401 - chgnet is optional
        try:
            from chgnet.model import CHGNet
        except ImportError:
            raise PredictorError('CHGNet needs the chgnet package: pip install "smoacs[relax]"') from None
        if model is None:
            with contextlib.redirect_stdout(io.StringIO()):
                model = CHGNet.load(use_device="cpu", verbose=False)
        self.model = model
        self.batch_size = batch_size
        self.info = PredictorInfo(
            name="chgnet-reference",
            property="energy_per_atom",
            unit="eV/atom",
            training_data="Materials Project trajectory (MPtrj)",
            source="chgnet wheel (CHGNet 0.3.0 weights, BSD-3-Clause), through CHGNet.predict_structure",
            description="CHGNet via its own per-structure graph pipeline (reference, slow)",
        )

    def rebuild(self, crystals: CrystalBatch) -> None:
        """Nothing to do: chgnet builds every graph afresh in :meth:`compute`."""

    def compute(
        self, crystals: CrystalBatch, forces: bool = True, stress: bool = True, create_graph: bool = False
    ) -> PotentialOutput:
        """Energy, forces and stress of every crystal (not differentiable: ``create_graph`` must be False)."""
        if create_graph:
            raise PredictorError("chgnet-reference is not differentiable; use the batched CHGNet adapter")
        structures = crystals.to_structures(wrap=False)
        task = "e" + ("f" if forces else "") + ("s" if stress else "")
        with warnings.catch_warnings(), torch.no_grad() if not (forces or stress) else contextlib.nullcontext():
            warnings.simplefilter("ignore")
            preds = self.model.predict_structure(structures, task=task, batch_size=self.batch_size)
        if isinstance(preds, dict):
            preds = [preds]
        dtype = crystals.lattice.dtype
        n_atoms = crystals.n_atoms
        energy = torch.tensor([float(p["e"]) for p in preds], dtype=torch.float64) * n_atoms.double()
        out = PotentialOutput(energy=energy.to(dtype), n_atoms=n_atoms)
        if forces:
            out.forces = torch.cat([torch.as_tensor(p["f"], dtype=dtype).reshape(-1, 3) for p in preds])
        if stress:
            out.stress = torch.stack([torch.as_tensor(p["s"], dtype=dtype).reshape(3, 3) for p in preds])
        return out
