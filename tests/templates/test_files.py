"""Templates from structure files: roles, patterns, ordering and every error a user can cause."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.vasp import Poscar

from smoacs.errors import TemplateError
from smoacs.templates.files import general_from_structure, load_templates, perovskite_from_structure, structure_files


def test_perovskite_roles_from_shuffled_file(tmp_path: Path, srtio3: Structure) -> None:
    order = [2, 0, 3, 1, 4]  # O Sr O Ti O
    shuffled = Structure(srtio3.lattice, [srtio3.species[i] for i in order], srtio3.frac_coords[order])
    Poscar(shuffled).write_file(tmp_path / "sto.vasp")  # POSCAR keeps the site order
    (template,) = load_templates(tmp_path / "sto.vasp", perovskite=True)
    assert template.name == "sto" and template.is_perovskite
    assert template.species == ("O", "Sr", "O", "Ti", "O")
    np.testing.assert_array_equal(template.site_roles, [2, 0, 2, 1, 2])  # Ti has the short O shell → B
    # Pattern columns follow the file's atom order.
    np.testing.assert_array_equal(template.ox_combos, [[-1, 1, -1, 2, -1], [-2, 2, -2, 4, -2]])
    assert template.coord_bound == pytest.approx(0.15) and not template.free_angles


def test_general_template_patterns(rock_salt: Structure) -> None:
    template = general_from_structure(rock_salt, "nacl")
    assert not template.is_perovskite and template.free_angles and template.coord_bound is None
    assert template.n_combos >= 1 and np.all(template.ox_combos.sum(axis=1) == 0)
    na = [i for i, s in enumerate(template.species) if s == "Na"]
    assert np.all(template.ox_combos[:, na] == 1)


def test_directory_sorted_and_formats(tmp_path: Path, rock_salt: Structure, srtio3: Structure) -> None:
    srtio3.to(filename=str(tmp_path / "b.cif"))
    Poscar(rock_salt).write_file(tmp_path / "a.vasp")
    Poscar(srtio3).write_file(tmp_path / "POSCAR")
    (tmp_path / "notes.txt").write_text("ignored")
    files = structure_files(tmp_path)
    assert [f.name for f in files] == ["POSCAR", "a.vasp", "b.cif"]
    templates = load_templates(tmp_path, perovskite=False)
    assert [t.name for t in templates] == ["POSCAR", "a", "b"]
    assert [t.n_atoms for t in templates] == [5, 8, 5]


def test_errors(tmp_path: Path, rock_salt: Structure) -> None:
    with pytest.raises(TemplateError, match="does not exist"):
        load_templates(tmp_path / "missing", perovskite=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TemplateError, match="no structure files"):
        load_templates(empty, perovskite=True)
    garbage = tmp_path / "garbage.cif"
    garbage.write_text("this is not a CIF file\n")
    with pytest.raises(TemplateError, match="cannot read template file .*garbage.cif"):
        load_templates(garbage, perovskite=True)
    rock_salt.to(filename=str(tmp_path / "nacl.cif"))
    with pytest.raises(TemplateError, match="not an ABX3 unit cell"):
        load_templates(tmp_path / "nacl.cif", perovskite=True)
    with pytest.raises(TemplateError, match="supercells"):
        load_templates(tmp_path / "nacl.cif", perovskite=False, supercell=2)
    disordered = Structure(Lattice.cubic(4.0), [{"Na": 0.5, "K": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    disordered.to(filename=str(tmp_path / "dis.cif"))
    with pytest.raises(TemplateError, match="partially occupied"):
        load_templates(tmp_path / "dis.cif", perovskite=False)
    cations = Structure(Lattice.cubic(3.0), ["Fe", "Co"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(TemplateError, match="admits no neutral oxidation pattern"):
        general_from_structure(cations, "feco")


def test_perovskite_from_structure_requires_five_sites(rock_salt: Structure) -> None:
    with pytest.raises(TemplateError):
        perovskite_from_structure(rock_salt, "x")
