"""The ``physics`` section of a run: the universal potential in the loop and the final relaxation."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from smoacs.errors import ConfigError

#: Potentials a run can use (registry names of predictors that implement the ``Potential`` protocol).
POTENTIALS = ("chgnet",)
#: ``physics.potential`` value of the plain SMOACS behaviour (no potential, nothing relaxed unless asked).
NO_PHYSICS = "none"


@dataclass(frozen=True)
class PhysicsSettings:
    """Physics in the design loop and in the verdict (``--physics``).

    With a potential, the geometry parameters follow its energy while the composition follows the objectives
    (:class:`smoacs.physics.loop.PotentialGeometry`), every final candidate is relaxed (cell and positions, batched
    FIRE) and ``success`` is the verdict on the **relaxed** structure; the unrelaxed verdict is kept as
    ``unrelaxed_success``. With ``"none"`` the run is plain SMOACS.

    Attributes:
        potential: ``"chgnet"`` or ``"none"``.
        every: the potential moves the geometry on every this many optimiser steps (1: every step).
        fmax: convergence threshold of the final relaxation, eV/Å (ASE's measure, atoms and cell).
        max_steps: step limit of the final relaxation; a structure that has not converged by then is not a success.
        batch_size: structures relaxed together.
        perturb: before the final relaxation every atom is displaced by this distance (Å) in a seeded random
            direction, so that a symmetric cell sitting on a saddle (an unstable cubic perovskite) can leave it; 0: off.
        polish_rounds: composition-polish rounds after the design loop (``gradient`` search only;
            :mod:`smoacs.physics.polish`): relax every candidate, then ``polish_steps`` composition-only gradient steps
            at the relaxed geometry for those that miss an objective there; the final relaxation and verdict follow.
            0: off.
        polish_steps: composition-only Adam steps per polish round.
        polish_replace: in each polish round, a candidate whose relaxed structure left its template's coordinate
            bounds (it would fail the template-geometry check) takes the composition of a random candidate that
            stayed inside them and meets every objective, with one site changed to another admissible element, on
            that candidate's relaxed geometry, and is polished from there (:mod:`smoacs.physics.polish`).
        screen: fraction of the run's candidates (rounded down) that start from the single-anion screen at the
            potential's equilibrium lattice constant, and are left out of the search and the polish (``gradient``
            search on a perovskite unit-cell template; :mod:`smoacs.search.screen`); 0: off.
    """

    potential: str = "chgnet"
    every: int = 2
    fmax: float = 0.05
    max_steps: int = 300
    batch_size: int = 256
    perturb: float = 0.02
    polish_rounds: int = 2
    polish_steps: int = 30
    polish_replace: bool = True
    screen: float = 0.0

    def __post_init__(self) -> None:
        if self.potential not in (*POTENTIALS, NO_PHYSICS):
            raise ConfigError(
                f"physics.potential must be one of {', '.join((*POTENTIALS, NO_PHYSICS))}, got {self.potential!r}"
            )
        if self.every < 1:
            raise ConfigError(f"physics.every must be ≥ 1, got {self.every}")
        if not self.fmax > 0:
            raise ConfigError(f"physics.fmax must be > 0 eV/Å, got {self.fmax}")
        if self.max_steps < 1:
            raise ConfigError(f"physics.max_steps must be ≥ 1, got {self.max_steps}")
        if not 0 <= self.perturb < 0.5:
            raise ConfigError(f"physics.perturb must be in [0, 0.5) Å, got {self.perturb}")
        if self.polish_rounds < 0:
            raise ConfigError(f"physics.polish_rounds must be ≥ 0, got {self.polish_rounds}")
        if self.polish_steps < 1:
            raise ConfigError(f"physics.polish_steps must be ≥ 1, got {self.polish_steps}")
        if not 0 <= self.screen <= 1:
            raise ConfigError(f"physics.screen must be a fraction of the candidates in [0, 1], got {self.screen}")
        if self.batch_size < 1:
            raise ConfigError(f"physics.batch_size must be ≥ 1, got {self.batch_size}")

    @property
    def enabled(self) -> bool:
        """True when a potential is in the loop and in the verdict."""
        return self.potential != NO_PHYSICS

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for run.json."""
        return asdict(self)
