"""Writers for run directories."""

from __future__ import annotations

from smoacs.io.plots import plot_history
from smoacs.io.writers import RunWriter, csv_text, to_cif, to_poscar

__all__ = ["RunWriter", "csv_text", "plot_history", "to_cif", "to_poscar"]
