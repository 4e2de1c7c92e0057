"""DesignSpace settings for general templates: relative length/angle bounds and a default coordinate bound."""

from __future__ import annotations

import numpy as np
import torch
from pymatgen.core import Lattice, Structure

from smoacs.design import DesignSpace, SpaceSettings
from smoacs.templates import perovskite_templates
from smoacs.templates.files import general_from_structure

GENERAL = SpaceSettings(
    length_bounds=(1.5, 30.0),
    angle_bounds=(30.0, 150.0),
    relative_length_bounds=(0.7, 1.5),
    relative_angle_bounds=15.0,
    default_coord_bound=0.25,
)


def _hexagonal() -> Structure:
    return Structure(Lattice.hexagonal(3.2, 12.5), ["Zn", "O"], [[1 / 3, 2 / 3, 0.0], [1 / 3, 2 / 3, 0.38]])


def _space(settings: SpaceSettings) -> DesignSpace:
    return DesignSpace([*perovskite_templates(2, seed=3), general_from_structure(_hexagonal(), "zno")], settings)


def test_relative_bounds_apply_to_general_templates_only() -> None:
    space = _space(GENERAL)
    low, high = space.length_low.numpy(), space.length_high.numpy()
    np.testing.assert_allclose(low[2], [0.7 * 3.2, 0.7 * 3.2, 0.7 * 12.5], rtol=1e-6)
    np.testing.assert_allclose(high[2], [1.5 * 3.2, 1.5 * 3.2, min(30.0, 1.5 * 12.5)], rtol=1e-6)
    np.testing.assert_allclose(low[:2], 1.5)  # perovskites keep the absolute bounds
    np.testing.assert_allclose(high[:2], 30.0)
    np.testing.assert_allclose(space.lengths().detach().numpy()[2], [3.2, 3.2, 12.5], rtol=1e-4)
    np.testing.assert_allclose(space.angles().detach().numpy()[2], [90.0, 90.0, 120.0], rtol=1e-4)
    with torch.no_grad():
        space.angle_raw.fill_(1e4)
        space.length_raw.fill_(-1e4)
        space.coord_raw.fill_(1e4)
    np.testing.assert_allclose(space.angles().detach().numpy()[2], [105.0, 105.0, 135.0], rtol=1e-5)
    assert torch.all(space.angles()[:2] == 90.0)
    np.testing.assert_allclose(space.lengths().detach().numpy()[2], low[2], rtol=1e-5)
    displacement = (space.frac_coords() - space.frac0).detach()
    torch.testing.assert_close(displacement[10:], torch.full_like(displacement[10:], 0.25))
    torch.testing.assert_close(displacement[:10], torch.full_like(displacement[:10], 0.15 / 1))


def test_defaults_leave_general_templates_unbounded() -> None:
    space = _space(SpaceSettings(length_bounds=(2.0, 13.0)))
    np.testing.assert_allclose(space.length_low.numpy()[2], 2.0)
    with torch.no_grad():
        space.coord_raw.fill_(0.7)
    displacement = (space.frac_coords() - space.frac0).detach()
    torch.testing.assert_close(displacement[10:], torch.full_like(displacement[10:], 0.7))


def test_unbounded_coordinates_have_finite_gradients() -> None:
    space = _space(SpaceSettings(length_bounds=(2.0, 13.0)))  # general template unbounded, perovskites bounded
    space.frac_coords().sum().backward()
    assert torch.isfinite(space.coord_raw.grad).all()
    torch.testing.assert_close(space.coord_raw.grad[10:], torch.ones_like(space.coord_raw.grad[10:]))
