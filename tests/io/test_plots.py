"""history.png: a loss panel, units on the axes, successes marked, candidate ids in the legend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from smoacs.io.plots import plot_history
from smoacs.objectives import Above, Window


def test_history_plot_panels_units_ids_and_successes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.figure

    figures = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, path, **kw: figures.append(fig))
    steps, n = 5, 4
    rng = np.random.default_rng(0)
    history = {"loss": rng.random((steps, n)), "band_gap": rng.random((steps, n)), "min_distance": rng.random((steps, n))}
    final_loss = np.array([0.3, 0.0, 0.2, 0.1])  # c00000 is a success despite the highest loss: drawn first
    drawn = plot_history(tmp_path / "h.png", history, [Window("band_gap", 2.0), Above("min_distance", 0.5)], final_loss,
                         n_best=3, ids=["c00000", "c00001", "c00002", "c00003"],
                         success=np.array([True, False, False, False]), units={"band_gap": "eV"})  # fmt: skip
    assert drawn == [0, 1, 3]  # the success, then the lowest final loss
    (fig,) = figures
    loss, gap, dmin = fig.axes[:3]
    assert loss.get_ylabel() == "loss (weighted sum)" and loss.get_yscale() == "symlog"
    assert gap.get_ylabel() == "band_gap (eV)" and dmin.get_ylabel() == "min_distance (Å)"
    assert dmin.get_xlabel() == "optimisation step"
    legend = [t.get_text() for t in loss.get_legend().get_texts()]
    assert legend == ["c00000 ✓", "c00001", "c00003"]
    styles = [line.get_linestyle() for line in gap.get_lines() if len(line.get_xdata()) == steps]
    assert styles == ["-", "--", "--"]  # the success solid, the others dashed
    assert any(line.get_marker() == "*" for line in gap.get_lines())  # the success's end is starred
