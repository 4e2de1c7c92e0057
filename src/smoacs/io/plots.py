"""history.png: the loss and, per objective, the trajectories of the best candidates, with the criteria drawn.

Each line is one candidate, labelled with its id (``c00012`` → ``structures/c00012.cif``) in the legend; successes
(after discretisation, as in result.csv) are solid and end in a star, the others are dashed. Axes carry units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from smoacs.objectives.terms import Objective

#: Units of the derived quantities (predicted properties take their predictor's unit).
DERIVED_UNITS = {"tolerance": "dimensionless", "min_distance": "Å"}


def _label(key: str, units: Mapping[str, str]) -> str:
    unit = units.get(key) or DERIVED_UNITS.get(key)
    return f"{key} ({unit})" if unit else key


def plot_history(
    path: Path,
    history: dict[str, np.ndarray],
    objectives: Sequence[Objective],
    final_loss: np.ndarray,
    n_best: int = 20,
    ids: Sequence[str] | None = None,
    success: np.ndarray | None = None,
    units: Mapping[str, str] | None = None,
) -> list[int]:
    """Plot ``history[key]`` (``[steps, B]``) of ``n_best`` candidates: the successes, then the lowest final loss.

    Args:
        path: the PNG written.
        history: ``loss`` and the objective keys → ``[steps, B]`` arrays.
        objectives: the run's objective terms (their criteria are drawn as horizontal lines).
        final_loss: ``[B]`` loss at the last step (ranks the candidates).
        n_best: candidates drawn.
        ids: ``[B]`` candidate ids (legend); default ``#<column>``.
        success: ``[B]`` bool, the candidates' final success (marked); default: none marked.
        units: property → unit for the axis labels (derived quantities have theirs).

    Returns:
        The columns drawn, in legend order.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    terms = [o for o in objectives if o.key in history]
    if not terms and "loss" not in history:
        return []
    n = final_loss.shape[0]
    names = list(ids) if ids is not None else [f"#{i}" for i in range(n)]
    won = np.asarray(success, dtype=bool) if success is not None else np.zeros(n, dtype=bool)
    ranked = np.argsort(np.nan_to_num(final_loss, nan=np.inf), kind="stable")
    order = np.concatenate([ranked[won[ranked]], ranked[~won[ranked]]])[:n_best]  # successes first, then by loss
    panels = (["loss"] if "loss" in history else []) + [o.key for o in terms]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.6 * len(panels)), sharex=True, squeeze=False)
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(order), 1)))
    by_key = {o.key: o for o in terms}
    for axis, key in zip(axes[:, 0], panels, strict=True):
        values = history[key]
        for colour, column in zip(colours, order, strict=False):
            style = "-" if won[column] else "--"
            label = f"{names[column]}{' ✓' if won[column] else ''}" if axis is axes[0, 0] else None
            axis.plot(values[:, column], ls=style, lw=1.2 if won[column] else 0.8, color=colour, alpha=0.85, label=label)
            if won[column]:
                axis.plot(len(values) - 1, values[-1, column], marker="*", ms=9, color=colour)
        if key == "loss":
            axis.set_yscale("symlog", linthresh=1e-3)
            axis.set_ylabel("loss (weighted sum)")
        else:
            for value, line in by_key[key].plot_lines():
                axis.axhline(value, color="k", ls=line, lw=1)
            axis.set_ylabel(_label(key, units or {}))
    axes[-1, 0].set_xlabel("optimisation step")
    axes[0, 0].set_title(f"{len(order)} candidates (successes, then lowest final loss); solid + ★ = success, dashed = not")
    axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, title="candidate id", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [int(c) for c in order]
