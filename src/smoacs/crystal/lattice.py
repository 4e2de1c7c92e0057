"""Lattice parameters ↔ lattice matrices (rows are lattice vectors, lengths in Å, angles in degrees)."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

ArrayT = TypeVar("ArrayT", np.ndarray, Tensor)

BOUND_SLACK = 1e-6
"""Fractional-unit slack of every "site within its coordinate bound" test (the verdict's and the polish's alike)."""

ANGLE_SLACK = 1e-6
"""Slack (degrees) of every "lattice angles within the allowed range" test (the verdict's and the polish's alike)."""


def lattice_from_parameters(lengths: Tensor, angles_deg: Tensor) -> Tensor:
    """Build lattice matrices from lengths and angles, differentiably.

    Convention: a₁ = (a, 0, 0); a₂ = (b cos γ, b sin γ, 0); a₃ = (c cos β, c (cos α − cos β cos γ)/sin γ, c·n_z).

    Args:
        lengths: ``[n_crystals, 3]`` a, b, c in Å.
        angles_deg: ``[n_crystals, 3]`` α, β, γ in degrees.

    Returns:
        ``[n_crystals, 3, 3]`` lattice matrices with lattice vectors as rows. Angle triples that do not form a cell
        give NaN in the third row; callers validate bounds beforehand.
    """
    alpha, beta, gamma = torch.deg2rad(angles_deg).unbind(-1)
    a, b, c = lengths.unbind(-1)
    cos_a, cos_b, cos_g = torch.cos(alpha), torch.cos(beta), torch.cos(gamma)
    sin_g = torch.sin(gamma)
    zero = torch.zeros_like(a)
    c_y = (cos_a - cos_b * cos_g) / sin_g
    c_z = torch.sqrt(1.0 - cos_b**2 - c_y**2)
    row_a = torch.stack([a, zero, zero], dim=-1)
    row_b = torch.stack([b * cos_g, b * sin_g, zero], dim=-1)
    row_c = torch.stack([c * cos_b, c * c_y, c * c_z], dim=-1)
    return torch.stack([row_a, row_b, row_c], dim=-2)


def lattice_to_parameters(lattice: Tensor) -> tuple[Tensor, Tensor]:
    """Lengths (Å) and angles (degrees) of ``[n, 3, 3]`` row-vector lattices."""
    lengths = lattice.norm(dim=-1)
    a, b, c = lattice.unbind(-2)

    def angle(u: Tensor, v: Tensor) -> Tensor:
        cos = (u * v).sum(-1) / (u.norm(dim=-1) * v.norm(dim=-1))
        return torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))

    angles = torch.stack([angle(b, c), angle(a, c), angle(a, b)], dim=-1)
    return lengths, angles


def periodic_displacement(frac: ArrayT, frac0: ArrayT) -> ArrayT:
    """``[n_atoms, 3]`` signed displacement of fractional coordinates from reference ones, each axis taken to the
    nearest periodic image (fractional units, in [-0.5, 0.5)); numpy arrays or tensors alike.

    The one definition used by the design space's coordinate bounds, the polish's escape test and the verdict's
    template-geometry check.
    """
    return (frac - frac0 + 0.5) % 1.0 - 0.5


def angles_within(angles: ArrayT, angle_range: tuple[float, float]) -> ArrayT:
    """``[n]`` bool: every one of a crystal's three lattice angles (``[n, 3]``, degrees) lies within ``angle_range``
    (min, max), :data:`ANGLE_SLACK` included; numpy arrays or tensors alike.

    The one definition used by the verdict's template-geometry check and the polish's escape test.
    """
    low, high = angle_range
    return ((angles >= low - ANGLE_SLACK) & (angles <= high + ANGLE_SLACK)).all(1)
