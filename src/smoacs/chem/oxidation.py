"""Oxidation-state tables, element masks per oxidation state, and charge-neutrality search.

Two tables (see ``scripts/generate_chem_tables.py``), both restricted to :data:`OX_STATES`:

* ``"super_common"``: pymatgen ICSD ∩ pymatgen ``oxidation_states`` ∩ SMACT ∩ pymatgen ``common_oxidation_states``;
  the table of the original element masks and of its neutrality test (75 elements carry at least one state).
* ``"icsd3"``: the same without "common"; the original builds ox-combos of general templates from it.

The "ionic" masks further keep only (element, state) pairs that have a crystal radius (:mod:`smoacs.chem.radii`);
they are used for perovskites.

Neutrality search. The zero-sum tuples of ``itertools.product(*options)`` are found without walking the product:
for every suffix of atoms the set of reachable partial charge sums is computed once (a dynamic programme over atoms,
each set stored as a Python-int bitset, at most 11·n + 1 values), then a depth-first walk in product order only
takes a state when the remaining atoms can still bring the running sum back to zero. Every branch taken therefore
ends in a neutral tuple, so the k-th tuple costs O(n) steps after an O(n · n_states) set-up, whatever the size of
the product.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cache
from itertools import islice

import numpy as np

from smoacs.chem._tables import OX_STATES, OX_TABLES, OxTable, ox_index, ox_table, radii
from smoacs.chem.elements import ELEMENTS, N_ELEMENTS, element_index
from smoacs.errors import ChemistryError

__all__ = [
    "OX_STATES",
    "OxTable",
    "allowed_elements",
    "allowed_table",
    "enumerate_neutral_combos",
    "is_neutral",
    "neutral_assignment",
    "ox_index",
    "oxidation_states",
]


def oxidation_states(symbol: str, table: OxTable = "super_common") -> tuple[int, ...]:
    """Allowed oxidation states of an element, ascending.

    Args:
        symbol: Element symbol (H … Cf).
        table: ``"super_common"`` (4-way intersection) or ``"icsd3"`` (3-way, without "common").

    Returns:
        The states (elementary charges), a subset of :data:`OX_STATES`; empty for elements without any (e.g. He).

    Raises:
        ChemistryError: Unknown element or table name.
    """
    element_index(symbol)
    return ox_table(table)[symbol]


@cache
def allowed_table(ionic: bool = False) -> np.ndarray:
    """Super-common element masks for all oxidation states at once.

    Args:
        ionic: Keep only (element, state) pairs that have a crystal radius (the perovskite masks).

    Returns:
        ``[98, len(OX_STATES)]`` bool, row Z − 1, column :func:`ox_index`; cached and read-only.
    """
    table = np.zeros((N_ELEMENTS, len(OX_STATES)), dtype=bool)
    states = ox_table("super_common")
    with_radius = radii()
    for i, symbol in enumerate(ELEMENTS):
        for ox in states[symbol]:
            if not ionic or ox in with_radius.get(symbol, {}):
                table[i, ox_index(ox)] = True
    table.setflags(write=False)
    return table


def allowed_elements(ox: int, ionic: bool = False) -> np.ndarray:
    """Elements allowed at one oxidation state (one key of the original mask files).

    Args:
        ox: Oxidation state (elementary charges), one of :data:`OX_STATES`.
        ionic: Keep only elements that have a crystal radius at ``ox`` (the perovskite masks).

    Returns:
        ``[98]`` bool over Z = 1 … 98 (read-only view of :func:`allowed_table`).

    Raises:
        ChemistryError: ``ox`` is not one of :data:`OX_STATES`.
    """
    return allowed_table(ionic)[:, ox_index(ox)]


def _add(bits: int, shift: int) -> int:
    """Shift a bitset of sums by ``shift`` (add ``shift`` to every member)."""
    return bits << shift if shift >= 0 else bits >> -shift


def _zero_sum_tuples(options: Sequence[Sequence[int]]) -> Iterator[tuple[int, ...]]:
    """Zero-sum tuples of ``itertools.product(*options)`` in product order, without walking the product.

    Bit ``b`` of ``reach[i]`` means the atoms ``i …`` can sum to ``b + base``; ``base`` is below every partial sum, so
    no shift drops a member.
    """
    options = [tuple(int(s) for s in opts) for opts in options]
    n = len(options)
    if any(not opts for opts in options):
        return
    base = sum(min(0, *opts) for opts in options)
    reach = [0] * (n + 1)
    reach[n] = 1 << -base
    for i in range(n - 1, -1, -1):
        for s in set(options[i]):
            reach[i] |= _add(reach[i + 1], s)

    def reachable(i: int, total: int) -> bool:
        b = total - base
        return b >= 0 and bool((reach[i] >> b) & 1)

    if not reachable(0, 0):
        return
    if n == 0:
        yield ()
        return
    choice = [-1] * n  # index into options[i] of the state currently taken by atom i
    prefix = [0] * (n + 1)  # prefix[i] = sum of the states taken by atoms 0 … i-1
    i = 0
    while i >= 0:
        opts = options[i]
        choice_i = choice[i] + 1
        while choice_i < len(opts) and not reachable(i + 1, -(prefix[i] + opts[choice_i])):
            choice_i += 1
        if choice_i == len(opts):
            choice[i] = -1
            i -= 1
            continue
        choice[i] = choice_i
        prefix[i + 1] = prefix[i] + opts[choice_i]
        if i == n - 1:
            yield tuple(options[j][choice[j]] for j in range(n))
        else:
            i += 1


def enumerate_neutral_combos(state_options: Sequence[Sequence[int]], max_combos: int) -> list[tuple[int, ...]]:
    """The first zero-sum tuples of ``itertools.product(*state_options)``, in product order.

    Equivalent to ``[t for t in product(*state_options) if sum(t) == 0][:max_combos]`` (duplicates in an option list
    give duplicate tuples, as in the product), but the product is never enumerated: see the module docstring.

    Args:
        state_options: One sequence of candidate oxidation states per atom, in the template's atom order.
        max_combos: Maximum number of tuples returned (≥ 0).

    Returns:
        Up to ``max_combos`` tuples, each one state per atom with sum 0; empty if none exists or an atom has no options.

    Raises:
        ChemistryError: ``max_combos`` is negative.
    """
    if max_combos < 0:
        raise ChemistryError(f"max_combos must be >= 0, got {max_combos}")
    return list(islice(_zero_sum_tuples(state_options), max_combos))


def neutral_assignment(symbols: Sequence[str], table: OxTable = "super_common") -> tuple[int, ...] | None:
    """One charge-neutral per-atom oxidation-state assignment, or None (the test of METHOD §7.3).

    Atoms of the same element may take different states (mixed valence). Among all neutral assignments the
    lexicographically smallest one is returned, comparing atom by atom in the given order with each atom's states in
    ascending order; that is the first neutral tuple of ``product(*(oxidation_states(s) for s in symbols))``, the
    tuple the original exhaustive search finds first. Runs in time polynomial in ``len(symbols)``.

    Args:
        symbols: Element symbol of every atom (e.g. a crystal's species), any order.
        table: Oxidation-state table, see :func:`oxidation_states`.

    Returns:
        One state per atom (same order as ``symbols``) summing to zero, or None if there is none, including when an
        element has no allowed states. An empty ``symbols`` gives ``()``.

    Raises:
        ChemistryError: An unknown element symbol or table name.
    """
    if table not in OX_TABLES:
        raise ChemistryError(f"oxidation-state table must be one of {OX_TABLES}, got {table!r}")
    options = [oxidation_states(symbol, table) for symbol in symbols]
    return next(_zero_sum_tuples(options), None)


def is_neutral(symbols: Sequence[str], table: OxTable = "super_common") -> bool:
    """Whether some per-atom assignment of allowed oxidation states sums to zero; see :func:`neutral_assignment`."""
    return neutral_assignment(symbols, table) is not None
