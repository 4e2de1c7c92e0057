"""Structural checks on discrete candidates: neutrality, perovskite geometry. Vectorised where it matters."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from smoacs.chem.oxidation import neutral_assignment
from smoacs.crystal.lattice import BOUND_SLACK, angles_within, periodic_displacement


def neutrality(symbols_per_crystal: Sequence[Sequence[str]]) -> tuple[np.ndarray, list[str]]:
    """Charge neutrality from the super-common oxidation states, independent of the optimiser's own pattern.

    Returns:
        ``[n]`` bool, and per crystal one neutral per-atom assignment as text (``"Ba+2 Ti+4 O-2 O-2 O-2"``) or "".
    """
    ok = np.zeros(len(symbols_per_crystal), dtype=bool)
    text = []
    for i, symbols in enumerate(symbols_per_crystal):
        assignment = neutral_assignment(symbols)
        ok[i] = assignment is not None
        text.append(" ".join(f"{s}{o:+d}" for s, o in zip(symbols, assignment, strict=True)) if assignment else "")
    return ok, text


def site_displacement(frac: np.ndarray, frac0: np.ndarray) -> np.ndarray:
    """``[n_atoms]`` largest per-axis periodic distance between fractional coordinates (fractional units)."""
    return np.abs(periodic_displacement(frac, frac0)).max(axis=-1)


def perovskite_geometry(
    frac: np.ndarray,
    frac0: np.ndarray,
    bound: np.ndarray,
    crystal_idx: np.ndarray,
    angles: np.ndarray,
    angle_range: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Perovskite preserved: every site within ±bound of its template site and every angle within ``angle_range``.

    Args:
        frac: ``[N, 3]`` final fractional coordinates.
        frac0: ``[N, 3]`` template coordinates.
        bound: ``[N]`` allowed displacement per site (fractional units).
        crystal_idx: ``[N]`` crystal of each site.
        angles: ``[B, 3]`` lattice angles in degrees.
        angle_range: allowed (min, max) angle in degrees.

    Returns:
        ``[B]`` bool, and ``[B]`` largest site displacement in fractional units.
    """
    n_crystals = angles.shape[0]
    displacement = site_displacement(frac, frac0)
    worst = np.zeros(n_crystals)
    np.maximum.at(worst, crystal_idx, displacement)
    excess = np.zeros(n_crystals)
    np.maximum.at(excess, crystal_idx, displacement - bound)
    coords_ok = excess <= BOUND_SLACK
    return coords_ok & angles_within(angles, angle_range), worst
