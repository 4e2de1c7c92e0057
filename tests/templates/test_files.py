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


# ---- one screen for every template (issue 9) -------------------------------------------------------------------------
def _overlapping(srtio3: Structure) -> Structure:
    coords = np.array(srtio3.frac_coords)
    coords[1] = coords[0] + [0.02, 0.0, 0.0]  # two sites 0.08 Å apart in a 3.9 Å cell
    return Structure(srtio3.lattice, srtio3.species, coords)


@pytest.mark.parametrize("perovskite", [True, False], ids=["perovskite", "general"])
def test_overlapping_atoms_are_skipped_with_the_reason(perovskite: bool, tmp_path: Path, srtio3: Structure) -> None:
    from smoacs.templates.files import load_template_set

    srtio3.to(filename=str(tmp_path / "good.cif"))
    Poscar(_overlapping(srtio3)).write_file(tmp_path / "bad.vasp")
    found = load_template_set(tmp_path, perovskite=perovskite)
    assert [t.name for t in found.templates] == ["good"]
    (skipped,) = found.skipped
    assert skipped.name == "bad" and "has overlapping atoms: two sites 0.078 Å apart (< 0.5 Å)" in skipped.reason
    (tmp_path / "good.cif").unlink()
    with pytest.raises(TemplateError, match=r"no usable template in .*: template bad has overlapping atoms"):
        load_template_set(tmp_path, perovskite=perovskite)


def test_perovskite_templates_are_screened_like_general_ones(srtio3: Structure) -> None:
    for element in ("Xe", "Cf", "Es"):  # a noble gas, no oxidation states in the table, beyond Cf
        swapped = srtio3.copy()
        swapped.replace_species({"Sr": element})
        messages = []
        for build in (perovskite_from_structure, general_from_structure):
            with pytest.raises(TemplateError) as info:
                build(swapped, "t")
            messages.append(str(info.value))
        assert messages[0] == messages[1]
        if element == "Es":
            assert messages[0].startswith("template t: unknown element 'Es'")
        else:
            assert messages[0] == f"template t ({swapped.composition.reduced_formula}) admits no neutral oxidation pattern"


def test_library_records_with_overlapping_atoms_are_skipped(srtio3: Structure) -> None:
    from smoacs.templates.packaged import general_templates

    bad = _overlapping(srtio3)
    record = {"name": "bad", "lattice": bad.lattice.matrix.tolist(), "species": [s.symbol for s in bad.species],
              "frac_coords": bad.frac_coords.tolist()}  # fmt: skip
    found = general_templates([record])
    assert found.templates == [] and "overlapping atoms" in found.skipped[0].reason


def test_structure_file_names() -> None:
    from smoacs.templates.files import is_structure_file

    names = ["a.cif", "b.VASP", "POSCAR", "CONTCAR_relaxed", "x.extxyz", "m.mcif"]
    assert all(is_structure_file(Path(n)) for n in names)
    assert not any(is_structure_file(Path(n)) for n in ["result.csv", "history.png", "run.json", "notes.txt"])
