"""`Template`: a starting geometry plus the oxidation-state patterns its sites may take."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SITE_ROLES: tuple[str, ...] = ("A", "B", "X")
NO_ROLE = -1
#: Name prefix of the templates a screen places (:mod:`smoacs.search.screen`): candidates that start from a
#: composition already checked at its equilibrium cell. The summary counts them (``n_screened``).
SCREENED_PREFIX = "screen-"


@dataclass(frozen=True)
class Template:
    """One starting crystal for the optimiser.

    The template's own elements are not used as a starting composition: it supplies geometry, site roles and the
    charge-neutral oxidation patterns (``ox_combos``), each given in the template's atom order.

    Attributes:
        name: stable identifier (file stem or generated name); results are keyed by it.
        lengths: ``[3]`` lattice lengths a, b, c in Å.
        angles: ``[3]`` lattice angles α, β, γ in degrees.
        frac_coords: ``[n_atoms, 3]`` fractional coordinates.
        ox_combos: ``[K, n_atoms]`` oxidation state of every site under each pattern; every row sums to 0.
        site_roles: ``[n_atoms]`` index into :data:`SITE_ROLES` (A, B, X) or :data:`NO_ROLE`.
        coord_bound: maximum displacement of each fractional coordinate from the template (±), or None (free).
        free_angles: whether the optimiser may change the angles.
        species: the template file's own species (informational), or empty for generated templates.
    """

    name: str
    lengths: np.ndarray
    angles: np.ndarray
    frac_coords: np.ndarray
    ox_combos: np.ndarray
    site_roles: np.ndarray
    coord_bound: float | None = None
    free_angles: bool = False
    species: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        n_atoms = self.frac_coords.shape[0]
        if self.frac_coords.shape != (n_atoms, 3) or n_atoms == 0:
            raise ValueError(f"template {self.name}: frac_coords must be [n_atoms, 3], got {self.frac_coords.shape}")
        if self.ox_combos.ndim != 2 or self.ox_combos.shape[1] != n_atoms or self.ox_combos.shape[0] == 0:
            raise ValueError(f"template {self.name}: ox_combos must be [K>0, {n_atoms}], got {self.ox_combos.shape}")
        if np.any(self.ox_combos.sum(axis=1) != 0):
            raise ValueError(f"template {self.name}: every oxidation pattern must sum to zero")
        if self.site_roles.shape != (n_atoms,):
            raise ValueError(f"template {self.name}: site_roles must be [{n_atoms}]")

    @property
    def n_atoms(self) -> int:
        """Number of sites."""
        return int(self.frac_coords.shape[0])

    @property
    def n_combos(self) -> int:
        """Number of oxidation patterns K."""
        return int(self.ox_combos.shape[0])

    @property
    def is_perovskite(self) -> bool:
        """Whether every site has an A/B/X role."""
        return bool(np.all(self.site_roles != NO_ROLE))


@dataclass(frozen=True)
class SkippedTemplate:
    """A template source (library entry or file) that was not used, and why."""

    name: str
    reason: str


@dataclass
class TemplateSet:
    """Usable templates in source order, and the skipped entries among those examined."""

    templates: list[Template] = field(default_factory=list)
    skipped: list[SkippedTemplate] = field(default_factory=list)
