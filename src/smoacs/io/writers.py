"""Text of a run directory's files as pure functions: ``to_cif``, ``to_poscar``, ``csv_text``.

Where the files go and when they are written is :mod:`smoacs.io.rundir`'s business.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any


def to_cif(structure: Any) -> str:
    """CIF text of a pymatgen structure (P1, as optimised)."""
    from pymatgen.io.cif import CifWriter

    return str(CifWriter(structure))


def to_poscar(structure: Any, comment: str) -> str:
    """VASP POSCAR text of a pymatgen structure."""
    from pymatgen.io.vasp import Poscar

    return Poscar(structure, comment=comment).get_str(significant_figures=8)


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
