"""Reading training tables: a CSV (optionally gzip) with a structure column (CIF text or file path) and a target."""

from __future__ import annotations

import hashlib
import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from smoacs.chem.elements import N_ELEMENTS, element_index
from smoacs.errors import ConfigError

LOG = logging.getLogger(__name__)
Transform = Literal["none", "negate", "log10"]
TRANSFORMS: tuple[str, ...] = ("none", "negate", "log10")


@dataclass
class Table:
    """Parsed rows of a training table.

    Attributes:
        path: the file read.
        structures: pymatgen structures of the usable rows.
        targets: ``[n]`` training targets (after the transform).
        ids: row identifiers (``id_column`` or the row number).
        skipped: ``(row, reason)`` of every row left out.
        sha256: hash of the file's bytes.
    """

    path: Path
    structures: list
    targets: np.ndarray
    ids: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    sha256: str = ""

    def __len__(self) -> int:
        return len(self.structures)

    def subset(self, rows: np.ndarray) -> Table:
        """The table restricted to the given row positions."""
        return Table(self.path, [self.structures[i] for i in rows], self.targets[rows], [self.ids[i] for i in rows],
                     list(self.skipped), self.sha256)  # fmt: skip


def apply_transform(values: np.ndarray, transform: Transform) -> np.ndarray:
    """Training target from the column values (log10 of non-positive values gives NaN)."""
    if transform == "negate":
        return -values
    if transform == "log10":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(values > 0, np.log10(np.where(values > 0, values, 1.0)), np.nan)
    if transform == "none":
        return values
    raise ConfigError(f"unknown target transform {transform!r}; use one of {', '.join(TRANSFORMS)}")


def _parse_structure(text: str, base: Path):  # noqa: ANN202 - pymatgen Structure
    from pymatgen.core import Structure

    text = text.strip()
    if "\n" not in text and (base / text).is_file():
        return Structure.from_file(str(base / text))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen's "fractional coordinates rounded" notes
        return Structure.from_str(text, fmt="cif")


def _check_structure(structure) -> str | None:  # noqa: ANN001
    if not structure.is_ordered:
        return "disordered structure"
    if len(structure) == 0:
        return "empty structure"
    try:
        if max(element_index(site.specie.symbol) for site in structure) >= N_ELEMENTS:
            return "element beyond Cf"
    except Exception as exc:  # noqa: BLE001 - unknown element symbols
        return f"unsupported species ({exc})"
    return None


def read_table(
    path: str | Path,
    structure_column: str = "cif",
    target_column: str = "prop",
    transform: Transform = "none",
    id_column: str | None = None,
) -> Table:
    """Read a CSV of structures and targets; unusable rows are logged, counted in ``skipped`` and left out.

    Args:
        path: CSV or CSV.gz file.
        structure_column: column with CIF text, or paths to structure files (relative to the CSV's folder).
        target_column: numeric target column.
        transform: ``negate`` (e.g. a column holding −Tc) or ``log10`` applied to the column.
        id_column: row identifier column (default ``material_id`` when present, else the row number).
    """
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a directory; give a CSV file (or .csv.gz) of structures and targets")
    if not path.is_file():
        raise ConfigError(f"training table not found: {path}")
    try:
        frame = pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - pandas raises many kinds
        raise ConfigError(f"cannot read {path} as CSV: {exc}") from exc
    for column in (structure_column, target_column):
        if column not in frame.columns:
            raise ConfigError(f"{path} has no column {column!r} (columns: {', '.join(map(str, frame.columns))})")
    id_column = id_column or ("material_id" if "material_id" in frame.columns else None)
    ids = frame[id_column].astype(str).tolist() if id_column else [str(i) for i in range(len(frame))]
    values = apply_transform(pd.to_numeric(frame[target_column], errors="coerce").to_numpy(float), transform)
    structures, targets, kept_ids, skipped = [], [], [], []
    for row, (text, value) in enumerate(zip(frame[structure_column], values, strict=True)):
        reason = None
        if not math.isfinite(value):
            reason = f"missing or invalid target ({str(frame[target_column].iloc[row])[:40]})"
        elif not isinstance(text, str) or not text.strip():
            reason = "missing structure"
        else:
            try:
                structure = _parse_structure(text, path.parent)
                reason = _check_structure(structure)
            except Exception as exc:  # noqa: BLE001 - any parse failure skips the row
                reason = f"unparsable structure ({type(exc).__name__}: {str(exc)[:80]})"
        if reason is not None:
            skipped.append((ids[row], reason))
            LOG.warning("%s row %s skipped: %s", path.name, ids[row], reason)
            continue
        structures.append(structure)
        targets.append(value)
        kept_ids.append(ids[row])
    if not structures:
        raise ConfigError(f"no usable rows in {path} ({len(skipped)} skipped)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Table(path, structures, np.asarray(targets, dtype=float), kept_ids, skipped, digest)
