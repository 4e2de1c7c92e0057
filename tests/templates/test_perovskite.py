"""Generated ABX3 perovskite templates: geometry, patterns, seeding, supercells."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from smoacs.templates import PEROVSKITE_COMBOS, perovskite_templates


def test_unit_cell_templates() -> None:
    templates = perovskite_templates(6, seed=3, length_range=(3.5, 6.0))
    assert [t.name for t in templates] == [f"perovskite-{i:04d}" for i in range(6)]
    lengths = np.array([t.lengths for t in templates])
    assert np.all((lengths >= 3.5) & (lengths <= 6.0))
    assert len({tuple(row) for row in lengths}) == 6, "lengths are drawn independently"
    for t in templates:
        assert t.n_atoms == 5 and t.is_perovskite and not t.free_angles
        np.testing.assert_array_equal(t.angles, 90.0)
        assert t.coord_bound == pytest.approx(0.15)
        np.testing.assert_array_equal(t.site_roles, [0, 1, 2, 2, 2])
        np.testing.assert_array_equal(t.ox_combos, PEROVSKITE_COMBOS)
        assert np.all(t.ox_combos.sum(axis=1) == 0)


def test_seeded_reproducibility() -> None:
    a = perovskite_templates(4, seed=1)
    b = perovskite_templates(4, seed=1)
    c = perovskite_templates(4, seed=2)
    assert all(np.array_equal(x.lengths, y.lengths) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0].lengths, c[0].lengths)


def test_site_geometry() -> None:
    # B is octahedrally coordinated by X at a/2; A sits in the 12-fold cage at a/√2.
    t = perovskite_templates(1, seed=0, length_range=(4.0, 4.0))[0]
    structure = Structure(Lattice.cubic(4.0), ["Sr", "Ti", "O", "O", "O"], t.frac_coords)
    b_shell = sorted(structure.get_neighbors(structure[1], 2.5), key=lambda n: n.nn_distance)
    assert len(b_shell) == 6 and all(n.specie.symbol == "O" for n in b_shell)
    assert all(n.nn_distance == pytest.approx(2.0) for n in b_shell)
    a_shell = structure.get_neighbors(structure[0], 3.0)
    assert len(a_shell) == 12 and all(n.specie.symbol == "O" and n.nn_distance == pytest.approx(4 / np.sqrt(2)) for n in a_shell)


def test_supercell() -> None:
    templates = perovskite_templates(2, seed=0, length_range=(3.0, 7.0), supercell=2)
    t = templates[0]
    assert t.name == "perovskite2x2x2-0000"
    assert t.n_atoms == 40 and t.coord_bound == pytest.approx(0.075)
    assert np.all((t.lengths >= 6.0) & (t.lengths <= 14.0))
    assert t.ox_combos.shape == (2, 40) and np.all(t.ox_combos.sum(axis=1) == 0)
    assert np.all((t.frac_coords >= 0) & (t.frac_coords < 1))
    assert len({tuple(row) for row in np.round(t.frac_coords, 6)}) == 40


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_templates": 0, "seed": 0}, "n_templates"),
        ({"n_templates": 1, "seed": 0, "length_range": (5.0, 3.0)}, "length_range"),
        ({"n_templates": 1, "seed": 0, "supercell": 0}, "supercell"),
    ],
)
def test_invalid_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        perovskite_templates(**kwargs)
