"""Templates read from structure files (CIF, POSCAR/CONTCAR/.vasp, extxyz), in sorted file order.

Every template built from a structure — a user file or a library record, ABX3 or general — passes the same screen
(:func:`screen_structure`): each element known (H … Cf) with at least one oxidation state, a neutral oxidation
pattern of the structure's own species, and no two sites closer than :data:`MIN_SITE_DISTANCE` Å. A structure that
fails is skipped with its reason (:class:`~smoacs.templates.base.SkippedTemplate`); a one-line error when nothing is
left.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from smoacs.chem.oxidation import enumerate_neutral_combos, oxidation_states
from smoacs.errors import ChemistryError, TemplateError
from smoacs.templates.base import NO_ROLE, SkippedTemplate, Template, TemplateSet
from smoacs.templates.perovskite import PEROVSKITE_COMBOS, UNIT_CELL_COORD_BOUND

STRUCTURE_SUFFIXES = (".cif", ".vasp", ".poscar", ".xyz", ".extxyz")
STRUCTURE_NAMES = ("POSCAR", "CONTCAR")
#: Oxidation patterns kept per general template (first K zero-sum tuples in the template's atom order).
MAX_COMBOS = 10
#: Sites closer than this (Å, periodic) are overlapping or coincident atoms: such a template is rejected.
MIN_SITE_DISTANCE = 0.5


def is_structure_file(path: Path) -> bool:
    """Whether ``path``'s name marks a structure file (:data:`STRUCTURE_SUFFIXES`, POSCAR, CONTCAR)."""
    return path.suffix.lower() in (*STRUCTURE_SUFFIXES, ".mcif") or path.name.upper().startswith(STRUCTURE_NAMES)


def shortest_distance(structure) -> float:  # noqa: ANN001 - pymatgen Structure
    """The shortest periodic distance between two sites (or a site and its own image), Å."""
    if len(structure) > 1:
        dist = np.array(structure.distance_matrix)
        np.fill_diagonal(dist, np.inf)
        shortest = float(dist.min())
    else:
        shortest = np.inf
    return min(shortest, float(min(structure.lattice.abc)))


def screen_structure(structure, name: str, max_combos: int = MAX_COMBOS) -> np.ndarray:  # noqa: ANN001
    """The first neutral oxidation patterns ``[K, n_atoms]`` of the structure's own species, after the template
    screen (known elements, a neutral pattern, no overlapping sites); TemplateError with the reason otherwise."""
    symbols = [site.specie.symbol for site in structure]
    try:
        options = [oxidation_states(s) for s in symbols]
    except ChemistryError as exc:
        raise TemplateError(f"template {name}: {exc}") from None
    combos = enumerate_neutral_combos(options, max_combos) if all(options) else []
    if not combos:
        raise TemplateError(f"template {name} ({structure.composition.reduced_formula}) admits no neutral oxidation pattern")
    shortest = shortest_distance(structure)
    if shortest < MIN_SITE_DISTANCE:
        raise TemplateError(
            f"template {name} has overlapping atoms: two sites {shortest:.3f} Å apart (< {MIN_SITE_DISTANCE} Å)"
        )
    return np.array(combos)


def read_structure(path: Path, role: str = "template"):  # noqa: ANN201 - pymatgen Structure
    """Read one ordered structure; any failure becomes a :class:`TemplateError` naming the file and its ``role``
    (``template``, ``reference``, …) in the run."""
    from pymatgen.core import Structure

    # Parser warnings are held back: an unreadable file gets one error line, a readable one its warnings.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if path.suffix.lower() in (".xyz", ".extxyz"):
                from ase.io import read
                from pymatgen.io.ase import AseAtomsAdaptor

                structure = AseAtomsAdaptor.get_structure(read(path))
            else:
                structure = Structure.from_file(path)
        except Exception as exc:  # noqa: BLE001 - parser errors come in many types
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise TemplateError(f"cannot read {role} file {path}: {reason}") from None
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if not structure.is_ordered:
        raise TemplateError(f"{role} file {path} has partially occupied sites; only ordered structures are supported")
    if len(structure) == 0:
        raise TemplateError(f"{role} file {path} contains no atoms")
    return structure


def structure_files(path: Path) -> list[Path]:
    """The structure files at ``path`` (a file, or a directory scanned non-recursively), sorted by name."""
    if not path.exists():
        raise TemplateError(f"template path does not exist: {path}")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and is_structure_file(p))
    if not files:
        raise TemplateError(f"no structure files ({', '.join(STRUCTURE_SUFFIXES)}, POSCAR) in {path}")
    return files


def perovskite_from_structure(structure, name: str) -> Template:  # noqa: ANN001
    """An ABX3 template from a 5-site cell: X = the element on three sites; B = the cation with the shorter X shell.

    Screened as every template (:func:`screen_structure`); its sites then take the A/B/X patterns.
    """
    screen_structure(structure, name)
    symbols = [site.specie.symbol for site in structure]
    counts = {s: symbols.count(s) for s in symbols}
    anions = [s for s, n in counts.items() if n == 3]
    if len(structure) != 5 or len(anions) != 1:
        raise TemplateError(f"template {name} is not an ABX3 unit cell (5 sites, one element on 3 of them): {structure.composition.formula}")
    x_sites = [i for i, s in enumerate(symbols) if s == anions[0]]
    cations = [i for i in range(5) if i not in x_sites]
    dist = structure.distance_matrix  # minimum-image distances
    shell = [np.sort(dist[c, x_sites])[:3].mean() for c in cations]
    b_site, a_site = (cations[0], cations[1]) if shell[0] <= shell[1] else (cations[1], cations[0])
    roles = np.full(5, NO_ROLE)
    roles[a_site], roles[b_site] = 0, 1
    roles[x_sites] = 2
    combos = PEROVSKITE_COMBOS[:, roles]
    return _from_structure(structure, name, combos, roles, coord_bound=UNIT_CELL_COORD_BOUND, free_angles=False)


def general_from_structure(structure, name: str, max_combos: int = MAX_COMBOS) -> Template:  # noqa: ANN001
    """A template with free geometry whose patterns are the first neutral per-site assignments of its own species.

    Patterns are enumerated in the template's atom order (the original code scrambled them, METHOD §2.3).
    """
    combos = screen_structure(structure, name, max_combos)
    roles = np.full(len(structure), NO_ROLE)
    return _from_structure(structure, name, combos, roles, coord_bound=None, free_angles=True)


def _from_structure(
    structure, name: str, combos: np.ndarray, roles: np.ndarray, coord_bound: float | None, free_angles: bool  # noqa: ANN001
) -> Template:
    lattice = structure.lattice
    return Template(
        name=name,
        lengths=np.array(lattice.abc),
        angles=np.array(lattice.angles),
        frac_coords=np.array(structure.frac_coords),
        ox_combos=combos,
        site_roles=roles,
        coord_bound=coord_bound,
        free_angles=free_angles,
        species=tuple(site.specie.symbol for site in structure),
    )


def load_template_set(path: Path, perovskite: bool, supercell: int = 1) -> TemplateSet:
    """Templates from a file or directory, and the files the screen skipped (with reasons).

    A file that cannot be read raises :class:`TemplateError`; one that fails the screen (or is not ABX3 for a
    perovskite run) is skipped; TemplateError naming the reasons when no file is left.
    """
    if supercell != 1:
        raise TemplateError("supercells are generated templates; they cannot be combined with template files")
    build = perovskite_from_structure if perovskite else general_from_structure
    out = TemplateSet()
    for file in structure_files(path):
        structure = read_structure(file)
        try:
            out.templates.append(build(structure, file.stem))
        except TemplateError as exc:
            out.skipped.append(SkippedTemplate(file.stem, str(exc)))
    if not out.templates:
        reasons = "; ".join(t.reason for t in out.skipped[:3]) + ("; …" if len(out.skipped) > 3 else "")
        raise TemplateError(f"no usable template in {path}: {reasons}")
    return out


def load_templates(path: Path, perovskite: bool, supercell: int = 1) -> list[Template]:
    """The usable templates of :func:`load_template_set` (skipped files are logged)."""
    return load_template_set(path, perovskite, supercell).templates
