"""AFLOW prototype templates: shipped copy, order, size filter, skipped entries and their patterns."""

from __future__ import annotations

import gzip
import importlib.resources
import json

import numpy as np
import pytest

from smoacs.chem.oxidation import oxidation_states
from smoacs.templates.packaged import general_templates, read_library
from smoacs.templates.prototypes import PROTOTYPES_FILE, prototype_templates


@pytest.fixture(scope="module")
def prototypes():  # noqa: ANN201
    return prototype_templates(max_atoms=10)


def test_shipped_copy_matches_pymatgen() -> None:
    records = read_library(PROTOTYPES_FILE)
    path = importlib.resources.files("pymatgen.analysis.prototypes") / "aflow_prototypes.json.gz"
    bundled = json.loads(gzip.decompress(path.read_bytes()))
    assert len(records) == len(bundled) == 288
    assert {r["aflow"] for r in records} == {e["tags"]["aflow"] for e in bundled}
    names = [r["name"] for r in records]
    assert names == sorted(names) and len(set(names)) == len(names)


def test_deterministic_sorted_order(prototypes) -> None:  # noqa: ANN001
    names = [t.name for t in prototypes.templates]
    assert names == sorted(names)
    assert names == [t.name for t in prototype_templates(max_atoms=10).templates]
    assert len(names) == 88


def test_max_atoms_filter(prototypes) -> None:  # noqa: ANN001
    assert all(t.n_atoms <= 10 for t in prototypes.templates)
    small = prototype_templates(max_atoms=4)
    assert small.templates and all(t.n_atoms <= 4 for t in small.templates)
    assert {t.name for t in small.templates} < {t.name for t in prototypes.templates}
    assert max(t.n_atoms for t in prototype_templates(max_atoms=None).templates) > 10


def test_skipped_have_reasons(prototypes) -> None:  # noqa: ANN001
    skipped = {s.name: s.reason for s in prototypes.skipped}
    assert skipped and all("neutral" in reason for reason in skipped.values())
    assert "A_cF4_225_a" in skipped  # fcc: elemental, no neutral pattern
    assert not skipped.keys() & {t.name for t in prototypes.templates}


def test_patterns_neutral_in_atom_order(prototypes) -> None:  # noqa: ANN001
    for template in prototypes.templates:
        assert np.all(template.ox_combos.sum(axis=1) == 0)
        for column, symbol in zip(template.ox_combos.T, template.species, strict=True):
            assert set(column.tolist()) <= set(oxidation_states(symbol))
        assert not template.is_perovskite and template.free_angles and template.coord_bound is None
    rock_salt = next(t for t in prototypes.templates if t.name == "AB_cF8_225_a_b")
    assert rock_salt.n_atoms == 2


def test_disordered_and_unknown_elements_skipped() -> None:
    lattice = [[4.0, 0, 0], [0, 4.0, 0], [0, 0, 4.0]]
    records = [
        {"name": "a-ok", "lattice": lattice, "species": ["Na", "Cl"], "frac_coords": [[0, 0, 0], [0.5, 0.5, 0.5]], "ordered": True},
        {"name": "b-disordered", "lattice": lattice, "species": ["Na0.5K0.5", "Cl"], "frac_coords": [[0, 0, 0], [0.5, 0.5, 0.5]], "ordered": False},
        {"name": "c-heavy", "lattice": lattice, "species": ["Es", "Cl"], "frac_coords": [[0, 0, 0], [0.5, 0.5, 0.5]], "ordered": True},
        {"name": "d-metal", "lattice": lattice, "species": ["Cu"], "frac_coords": [[0, 0, 0]], "ordered": True},
    ]  # fmt: skip
    result = general_templates(records)
    assert [t.name for t in result.templates] == ["a-ok"]
    reasons = {s.name: s.reason for s in result.skipped}
    assert set(reasons) == {"b-disordered", "c-heavy", "d-metal"}
    assert "disordered" in reasons["b-disordered"] and "neutral" in reasons["d-metal"]
