"""history.png: per objective, trajectories of the best candidates with the target window drawn."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from smoacs.objectives.terms import Objective


def plot_history(
    path: Path, history: dict[str, np.ndarray], objectives: Sequence[Objective], final_loss: np.ndarray, n_best: int = 20
) -> None:
    """Plot ``history[key]`` (``[steps, B]``) of the ``n_best`` candidates with the lowest final loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [o.key for o in objectives if o.key in history]
    if not keys:
        return
    order = np.argsort(np.nan_to_num(final_loss, nan=np.inf), kind="stable")[:n_best]
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 2.6 * len(keys)), sharex=True, squeeze=False)
    for axis, objective in zip(axes[:, 0], [o for o in objectives if o.key in history], strict=True):
        axis.plot(history[objective.key][:, order], lw=0.8, alpha=0.8)
        for value, style in objective.plot_lines():
            axis.axhline(value, color="k", ls=style, lw=1)
        axis.set_ylabel(objective.key)
    axes[-1, 0].set_xlabel("step")
    axes[0, 0].set_title(f"{len(order)} best candidates (lowest final loss)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
