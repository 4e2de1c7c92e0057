"""The run directory (layout, writing, reading back), its text formats, report and plots."""

from __future__ import annotations

from smoacs.io.plots import plot_history
from smoacs.io.rundir import RunDirectory, read_cif
from smoacs.io.writers import csv_text, to_cif, to_poscar

__all__ = ["RunDirectory", "csv_text", "plot_history", "read_cif", "to_cif", "to_poscar"]
