"""Writers for a run directory: result.csv, result_summary.csv, structures, result.npz, run.json, history.png.

Text is produced by pure functions (``to_cif``, ``to_poscar``, ``csv_text``) and written by thin ``write_*`` calls.
Results are appended per mini-batch so an interrupted run keeps what it finished.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


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


class RunWriter:
    """Owns a run directory and writes into it as mini-batches finish."""

    def __init__(self, out_dir: Path, resume_columns: Sequence[str] | None = None) -> None:
        self.out_dir = Path(out_dir)
        (self.out_dir / "structures").mkdir(parents=True, exist_ok=True)
        (self.out_dir / "poscar").mkdir(parents=True, exist_ok=True)
        self.columns: list[str] | None = list(resume_columns) if resume_columns else None

    @property
    def result_csv(self) -> Path:
        """Path of result.csv."""
        return self.out_dir / "result.csv"

    def append(self, rows: list[dict[str, Any]], structures: Sequence[Any]) -> None:
        """Write the structures of a finished mini-batch and append its rows to result.csv."""
        for row, structure in zip(rows, structures, strict=True):
            cif = Path("structures") / f"{row['id']}.cif"
            poscar = Path("poscar") / f"{row['id']}.vasp"
            (self.out_dir / cif).write_text(to_cif(structure))
            (self.out_dir / poscar).write_text(to_poscar(structure, f"{row['id']} {row['formula']}"))
            row["cif"] = str(cif)
            row["poscar"] = str(poscar)
        header = self.columns is None
        if self.columns is None:
            self.columns = list(rows[0])
        with self.result_csv.open("a" if not header else "w", encoding="utf-8") as handle:
            handle.write(csv_text(rows, self.columns, header))

    def rewrite(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite result.csv whole, with every column any row has (e.g. after the relaxation check)."""
        columns = list(self.columns or [])
        columns += [key for row in rows for key in row if key not in columns]
        self.columns = list(dict.fromkeys(columns))
        self.result_csv.write_text(csv_text(rows, self.columns, header=True), encoding="utf-8")

    def write_summary(self, summary: dict[str, Any]) -> None:
        """(Re)write result_summary.csv, one row."""
        (self.out_dir / "result_summary.csv").write_text(csv_text([summary], list(summary), header=True))

    def write_npz(self, arrays: dict[str, np.ndarray]) -> None:
        """(Re)write result.npz."""
        np.savez_compressed(self.out_dir / "result.npz", **arrays)

    def write_json(self, name: str, payload: dict[str, Any]) -> None:
        """Write a JSON file (sorted keys, indented)."""
        (self.out_dir / name).write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
