"""Structure-level duplicates and novelty (StructureMatcher within reduced-formula buckets), reference sets."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

import smoacs.evaluate.matching as matching
from smoacs.errors import ConfigError
from smoacs.evaluate.matching import (
    ReferenceSet,
    annotate_matching,
    find_reference_match,
    group_duplicates,
    load_reference_set,
    reference_set,
)

PEROVSKITE = [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]]


def perovskite(a: str, b: str, x: str, length: float = 3.9, noise: float = 0.0, seed: int = 0) -> Structure:
    rng = np.random.default_rng(seed)
    frac = np.array(PEROVSKITE) + rng.normal(0, noise, (5, 3))
    return Structure(Lattice.cubic(length), [a, b, x, x, x], frac)


def permuted(structure: Structure, seed: int) -> Structure:
    order = np.random.default_rng(seed).permutation(len(structure))
    return Structure(structure.lattice, [structure.species[i] for i in order], structure.frac_coords[order])


def test_perturbed_and_permuted_duplicates_are_grouped() -> None:
    base = perovskite("Sr", "Ti", "O")
    structures = [
        base,
        permuted(perovskite("Sr", "Ti", "O", 3.93, noise=0.01, seed=1), seed=2),  # same structure: small noise, shuffled
        perovskite("Ba", "Ti", "O"),  # other composition
        perovskite("Sr", "Ti", "O", 3.9, noise=0.0).make_supercell([1, 1, 2], in_place=False),  # same, doubled cell
        Structure(Lattice.tetragonal(3.9, 8.0), ["Sr", "Ti", "O", "O", "O"],
                  [[0, 0, 0], [0.5, 0.5, 0.1], [0.5, 0, 0.3], [0, 0.5, 0.6], [0.5, 0.5, 0.8]]),  # same formula, other cell
    ]  # fmt: skip
    assert group_duplicates(structures) == [0, 0, 2, 0, 4]


def test_different_compositions_are_never_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = matching._fits

    def counting(a: Structure, b: Structure) -> bool:
        calls.append((a.composition.reduced_formula, b.composition.reduced_formula))
        return real(a, b)

    monkeypatch.setattr(matching, "_fits", counting)
    structures = [perovskite("Sr", "Ti", "O"), perovskite("Ba", "Ti", "O"), perovskite("Ca", "Ti", "O"),
                  perovskite("Sr", "Ti", "O", 4.0, noise=0.01), perovskite("K", "Mg", "F")]  # fmt: skip
    assert group_duplicates(structures) == [0, 1, 2, 0, 4]
    assert calls and all(a == b for a, b in calls)
    # Same anonymised formula (ABC3) is not enough: a reference with another formula is never fitted.
    calls.clear()
    reference = ReferenceSet.from_structures("ref", [perovskite("Ba", "Zr", "O"), perovskite("K", "Nb", "O")])
    assert find_reference_match(perovskite("Sr", "Ti", "O"), [reference]) == ""
    assert calls == []


def test_novelty_against_planted_match(tmp_path: Path) -> None:
    planted = perovskite("Sr", "Ti", "O", 3.905)
    (tmp_path / "SrTiO3.cif").write_text(str(CifWriter(planted)))
    (tmp_path / "BaTiO3.cif").write_text(str(CifWriter(perovskite("Ba", "Ti", "O", 4.0))))
    reference = reference_set(str(tmp_path))
    assert len(reference) == 2 and len(load_reference_set(str(tmp_path))) == 2
    rows = [{"id": f"c{i}", "success": s} for i, s in enumerate([True, True, True, False])]
    structures = [perovskite("Sr", "Ti", "O", 3.95, noise=0.01, seed=3),  # matches the planted reference
                  perovskite("Sr", "Ti", "O", 3.9, noise=0.01, seed=4),  # duplicate of the first
                  perovskite("Ca", "Ti", "O", 3.8),  # novel
                  perovskite("Sr", "Ti", "O")]  # not a success: not compared  # fmt: skip
    annotate_matching(rows, structures, [reference])
    assert [r["unique"] for r in rows] == [True, False, True, False]
    assert [r["duplicate_of"] for r in rows] == ["", "c0", "", ""]
    assert [r["novel"] for r in rows] == [False, False, True, False]
    assert rows[0]["reference_id"] == f"{tmp_path.name}:SrTiO3.cif" and rows[0]["reference_match"] == "structure"
    annotate_matching(rows, structures, [])
    assert [r["novel"] for r in rows] == ["", "", "", ""]


def test_csv_reference_is_lazy(tmp_path: Path) -> None:
    path = tmp_path / "perov5_mini.csv.gz"
    entries = [("m1", perovskite("Sr", "Ti", "O")), ("m2", perovskite("K", "Mg", "F", 4.0))]
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["", "material_id", "cif"])
    for i, (ident, structure) in enumerate(entries):
        writer.writerow([i, ident, str(CifWriter(structure))])
    path.write_bytes(gzip.compress(buffer.getvalue().encode()))
    reference = reference_set("perov5", data_dir=tmp_path)
    assert reference.ids == ["perov5:m1", "perov5:m2"] and reference.formulas == ["SrTiO3", "KMgF3"]
    assert all(isinstance(s, str) for s in reference.sources)  # nothing parsed yet
    assert find_reference_match(perovskite("K", "Mg", "F", 4.05, noise=0.01), [reference]) == "perov5:m2"
    assert isinstance(reference.sources[1], Structure) and isinstance(reference.sources[0], str)


def test_unknown_and_missing_references(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown reference"):
        reference_set("perov7")
    with pytest.raises(ConfigError, match="no data found"):
        reference_set("supercon", data_dir=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError):
        reference_set(str(tmp_path / "empty"))


def test_packaged_references_match_their_own_entries() -> None:
    from smoacs.templates.packaged import read_library

    for spec, library in matching.PACKAGED_REFERENCES.items():
        reference = matching.reference_set(spec)
        record = next(r for r in read_library(library) if r.get("ordered", True))
        planted = Structure(Lattice(record["lattice"]), record["species"], record["frac_coords"])
        planted.perturb(0.01)
        assert matching.find_reference_match(planted, [reference]) == f"{spec}:{record['name']}"
    assert set(matching.available_references()) == set(matching.PACKAGED_REFERENCES)
