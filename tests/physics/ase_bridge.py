"""An ASE calculator around any smoacs ``Potential`` (test helper: runs ASE's FIRE on the same potential)."""

from __future__ import annotations

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes
from pymatgen.io.ase import AseAtomsAdaptor

from smoacs.crystal.batch import CrystalBatch
from smoacs.predictors.potential import EV_PER_A3_IN_GPA, Potential


class PotentialCalculator(Calculator):
    """Energy (eV), forces (eV/Å) and stress (eV/Å³, Voigt, ASE sign) of one Atoms object from a Potential."""

    implemented_properties = ("energy", "free_energy", "forces", "stress")

    def __init__(self, potential: Potential, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.potential, self.dtype = potential, dtype

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):  # noqa: ANN001
        super().calculate(atoms, properties, system_changes)
        structure = AseAtomsAdaptor.get_structure(self.atoms)
        batch = CrystalBatch.from_structures([structure], dtype=self.dtype)
        self.potential.rebuild(batch)
        out = self.potential.compute(batch, forces=True, stress=True)
        s = out.stress[0].detach().double().numpy() / EV_PER_A3_IN_GPA
        self.results["energy"] = self.results["free_energy"] = float(out.energy[0])
        self.results["forces"] = out.forces.detach().double().numpy()
        self.results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])


def ase_relax(structure, potential: Potential, fmax: float, steps: int, **filter_options) -> tuple[float, int, object]:  # noqa: ANN001
    """ASE FIRE + FrechetCellFilter on ``structure``; returns (energy eV, steps, final Atoms)."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = PotentialCalculator(potential)
    opt = FIRE(FrechetCellFilter(atoms, **filter_options), logfile=None)
    opt.run(fmax=fmax, steps=steps)
    return float(atoms.get_potential_energy()), int(opt.nsteps), atoms
