"""ABX3 perovskite templates with correct site geometry.

Unit cell: B at the origin, X at the edge centres (½,0,0), (0,½,0), (0,0,½), A at the body centre (½,½,½). B is then
octahedrally coordinated by 6 X at a/2 and A sits in the 12-coordinated cuboctahedral cage at a/√2. (The original
SMOACS code labels these two cation sites the other way round; see docs/METHOD notes.)
"""

from __future__ import annotations

import numpy as np

from smoacs.templates.base import Template

#: Site order of the unit cell: A, B, X, X, X.
PEROVSKITE_FRAC = np.array(
    [[0.5, 0.5, 0.5], [0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.5]], dtype=np.float64
)
PEROVSKITE_ROLES = np.array([0, 1, 2, 2, 2])
#: The two neutral patterns A⁺B²⁺X⁻₃ and A²⁺B⁴⁺X²⁻₃, per site in template order.
PEROVSKITE_COMBOS = np.array([[1, 2, -1, -1, -1], [2, 4, -2, -2, -2]])
#: Fractional-coordinate bound of a unit cell (±0.15, as in the original method); an n×n×n supercell uses 0.15/n.
UNIT_CELL_COORD_BOUND = 0.15


def perovskite_templates(
    n_templates: int,
    seed: int,
    length_range: tuple[float, float] = (3.0, 7.0),
    supercell: int = 1,
) -> list[Template]:
    """Random-lattice ABX3 templates with 90° angles and independent seeded lattice lengths.

    Args:
        n_templates: number of templates.
        seed: seed of the lattice-length draw (numpy ``default_rng``).
        length_range: range (Å) of the *unit-cell* lengths, each drawn uniformly and independently.
        supercell: n for an n×n×n supercell (n³·5 atoms; per-cell oxidation patterns repeated in every cell).

    Returns:
        Templates named ``perovskite-<i>`` (``perovskite{n}x{n}x{n}-<i>`` for supercells), in index order.
    """
    if n_templates < 1:
        raise ValueError(f"n_templates must be ≥ 1, got {n_templates}")
    low, high = length_range
    if not 0 < low <= high:
        raise ValueError(f"length_range must satisfy 0 < low ≤ high, got {length_range}")
    if supercell < 1:
        raise ValueError(f"supercell must be ≥ 1, got {supercell}")
    rng = np.random.default_rng(seed)
    lengths = rng.uniform(low, high, size=(n_templates, 3))
    n = supercell
    cells = np.array([[i, j, k] for i in range(n) for j in range(n) for k in range(n)], dtype=np.float64)
    frac = ((PEROVSKITE_FRAC[None, :, :] + cells[:, None, :]) / n).reshape(-1, 3)
    roles = np.tile(PEROVSKITE_ROLES, len(cells))
    combos = np.tile(PEROVSKITE_COMBOS, (1, len(cells)))
    prefix = "perovskite" if n == 1 else f"perovskite{n}x{n}x{n}"
    return [
        Template(
            name=f"{prefix}-{i:04d}",
            lengths=lengths[i] * n,
            angles=np.full(3, 90.0),
            frac_coords=frac.copy(),
            ox_combos=combos.copy(),
            site_roles=roles.copy(),
            coord_bound=UNIT_CELL_COORD_BOUND / n,
            free_angles=False,
        )
        for i in range(n_templates)
    ]
