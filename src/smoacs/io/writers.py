"""Text of a run directory's files as pure functions: ``to_cif``, ``to_poscar``, ``csv_text``.

Where the files go and when they are written is :mod:`smoacs.io.rundir`'s business.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Significant figures of POSCAR lattice vectors and fractional coordinates (fixed point, as pymatgen writes them).
POSCAR_FIGURES = 8


def to_cif(structure: Any) -> str:
    """CIF text of a pymatgen structure (P1, as optimised)."""
    from pymatgen.io.cif import CifWriter

    return str(CifWriter(structure))


def to_poscar(structure: Any, comment: str) -> str:
    """VASP 5 POSCAR text of an ordered pymatgen structure: direct coordinates, 8 significant figures.

    The text is the one ``pymatgen.io.vasp.Poscar(structure, comment=comment).get_str(significant_figures=8)``
    writes (a test compares them). It is formatted here because importing ``pymatgen.io.vasp`` costs ~0.7 s per
    process (its outputs module pulls in scipy.signal and scipy.stats) for ~0.1 ms of work per file; a left-handed
    lattice (pymatgen inverts it) and disordered structures (pymatgen refuses them) go through pymatgen itself.
    """
    lattice = np.asarray(structure.lattice.matrix, dtype=float)
    if not structure.is_ordered or np.linalg.det(lattice) < 0:
        from pymatgen.io.vasp import Poscar

        return Poscar(structure, comment=comment).get_str(significant_figures=POSCAR_FIGURES)
    number = f"{{:{POSCAR_FIGURES + 5}.{POSCAR_FIGURES}f}}".format
    symbols = [site.specie.symbol for site in structure]
    groups = [(symbol, len(list(run))) for symbol, run in itertools.groupby(symbols)]
    lines = [comment, "1.0", *(" ".join(map(number, vector)) for vector in lattice)]
    lines += [" ".join(symbol for symbol, _ in groups), " ".join(str(count) for _, count in groups), "direct"]
    lines += [" ".join(map(number, site.frac_coords)) + f" {site.species_string}" for site in structure]
    return "\n".join(lines) + "\n"


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str], header: bool) -> str:
    """CSV text of ``rows`` restricted to ``columns`` (floats at full precision)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(columns)
    for row in rows:
        writer.writerow([_format(row.get(column, "")) for column in columns])
    return buffer.getvalue()
