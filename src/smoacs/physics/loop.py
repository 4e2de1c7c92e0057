"""Physics in the design loop: a potential's energy drives the geometry while the objectives drive the composition.

:class:`PotentialGeometry` is the :class:`~smoacs.optimize.loop.GeometryDriver` of a run with ``physics`` on. Every
``every`` optimiser steps the total energy of the soft crystals (composition held fixed for this term) is added to
the loss, so the lattice and coordinate parameters descend the potential's energy surface of the *current*
composition, and the property losses — evaluated with the geometry's gradient cut — move only the composition. The
geometry therefore tracks the equilibrium of the composition being chosen instead of straining the cell into
whatever the property model likes; the final relaxation (:mod:`smoacs.evaluate.relaxation`) finishes the job.
"""

from __future__ import annotations

from torch import Tensor

from smoacs.crystal.batch import CrystalBatch
from smoacs.predictors.potential import Potential


class PotentialGeometry:
    """A potential's total energy (eV) as the geometry's objective in the optimiser.

    Args:
        potential: a batched potential (its energy differentiable in lattice and coordinates with
            ``create_graph=True``).
        every: apply it on every this many steps.
    """

    def __init__(self, potential: Potential, every: int = 1) -> None:
        self.potential = potential
        self.every = every

    def energy(self, crystals: CrystalBatch) -> Tensor:
        """``[B]`` total energy in eV of the (soft) crystals."""
        return self.potential.compute(crystals, forces=False, stress=False, create_graph=True).energy

    def rebuild(self, crystals: CrystalBatch) -> None:
        """Refresh the potential's neighbour graph from the current geometry."""
        self.potential.rebuild(crystals)
