"""Charge-neutrality search (METHOD §7.3) and neutral ox-combo enumeration."""

from __future__ import annotations

import random
import time
from itertools import islice, product

import pytest

from smoacs.chem import ELEMENTS, enumerate_neutral_combos, is_neutral, neutral_assignment, oxidation_states
from smoacs.errors import ChemistryError


def test_examples() -> None:
    assert neutral_assignment(["Sr", "Ti", "O", "O", "O"]) == (2, 4, -2, -2, -2)
    assert is_neutral(["Sr", "Ti", "O", "O", "O"])
    assert not is_neutral(["Na", "Cl", "Cl"])
    assert neutral_assignment(["Na", "Cl", "Cl"]) is None
    assert is_neutral(["Na", "Cl"])


def test_fe3o4_needs_mixed_valence() -> None:
    # Super-common Fe states are {+2, +3}: Fe3O4 is neutral only as Fe2+ Fe3+ Fe3+ (no single Fe state works).
    assert oxidation_states("Fe") == (2, 3)
    assignment = neutral_assignment(["Fe", "Fe", "Fe", "O", "O", "O", "O"])
    assert assignment == (2, 3, 3, -2, -2, -2, -2)
    assert is_neutral(["O", "Fe", "O", "Fe", "O", "Fe", "O"])


def test_element_without_states_and_unknown_symbol() -> None:
    assert neutral_assignment(["He"]) is None
    assert not is_neutral(["Na", "Cl", "Ar"])
    with pytest.raises(ChemistryError):
        is_neutral(["Na", "Xx"])
    with pytest.raises(ChemistryError):
        is_neutral(["Na", "Cl"], table="loose")  # type: ignore[arg-type]
    assert neutral_assignment([]) == ()


def test_icsd3_table() -> None:
    symbols = ["Na", "Cl"]
    assignment = neutral_assignment(symbols, table="icsd3")
    assert assignment is not None and sum(assignment) == 0
    assert all(s in oxidation_states(e, "icsd3") for e, s in zip(symbols, assignment))


def _brute_first(symbols: list[str], table: str) -> tuple[int, ...] | None:
    options = [oxidation_states(s, table) for s in symbols]  # type: ignore[arg-type]
    return next((t for t in product(*options) if sum(t) == 0), None)


@pytest.mark.parametrize("table", ["super_common", "icsd3"])
def test_dp_agrees_with_brute_force(table: str) -> None:
    rng = random.Random(0)
    with_states = [e for e in ELEMENTS if oxidation_states(e, table)]  # type: ignore[arg-type]
    pool = with_states[:40] + ["He", "Ne"]  # a few elements without states
    n_neutral = 0
    for _ in range(400):
        symbols = [rng.choice(pool) for _ in range(rng.randint(1, 6))]
        expected = _brute_first(symbols, table)
        assert neutral_assignment(symbols, table) == expected  # type: ignore[arg-type]
        n_neutral += expected is not None
    assert 10 < n_neutral < 390  # both outcomes represented


def test_135_atom_supercell_is_fast() -> None:
    symbols = ["Ba"] * 27 + ["Ti"] * 27 + ["O"] * 81
    start = time.perf_counter()
    assignment = neutral_assignment(symbols)
    assert time.perf_counter() - start < 0.5
    assert assignment == (2,) * 27 + (4,) * 27 + (-2,) * 81
    assert not is_neutral(symbols[:-1])
    start = time.perf_counter()
    mixed = ["Fe", "Mn", "S", "C", "O"] * 30  # many states per atom: product of ~10^70 tuples
    assert is_neutral(mixed)
    assert time.perf_counter() - start < 0.5


def _brute_combos(options: list[list[int]], k: int) -> list[tuple[int, ...]]:
    return list(islice((t for t in product(*options) if sum(t) == 0), k))


def test_enumerate_matches_brute_force() -> None:
    rng = random.Random(1)
    for _ in range(300):
        n = rng.randint(0, 6)
        options = [rng.sample([-4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7], rng.randint(0 if n else 1, 4)) for _ in range(n)]
        if rng.random() < 0.2 and options:
            options[0] = options[0] + options[0][:1]  # a duplicate state repeats tuples, as product does
        k = rng.choice([1, 3, 10, 10_000])
        assert enumerate_neutral_combos(options, k) == _brute_combos(options, k)


def test_enumerate_order_and_limit() -> None:
    options = [[1, 2], [2, 1], [-3, -2]]
    assert enumerate_neutral_combos(options, 10) == [(1, 2, -3), (1, 1, -2), (2, 1, -3)]
    assert enumerate_neutral_combos(options, 2) == [(1, 2, -3), (1, 1, -2)]
    assert enumerate_neutral_combos(options, 0) == []
    assert enumerate_neutral_combos([[1], []], 5) == []
    with pytest.raises(ChemistryError):
        enumerate_neutral_combos(options, -1)


def test_enumerate_huge_product_is_fast() -> None:
    options = [[-2, -1, 1, 2, 3]] * 120 + [[7]]  # 5^120 tuples
    start = time.perf_counter()
    combos = enumerate_neutral_combos(options, 10)
    assert time.perf_counter() - start < 0.5
    assert len(combos) == 10 and all(sum(c) == 0 for c in combos)
    assert combos == sorted(combos)  # product order is lexicographic here (options ascending)
    assert enumerate_neutral_combos([[1, 2]] * 200, 10) == []  # no zero sum: pruned at once
