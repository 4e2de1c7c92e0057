"""A `rich` progress bar that shows, per step, the share of solved candidates and the best values so far."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from smoacs.objectives.terms import Objective
from smoacs.optimize.loop import StepRecord


class ProgressDisplay:
    """Context manager owning a rich progress bar; ``callback(batch_label, steps)`` gives a per-step callback."""

    def __init__(self, objectives: Sequence[Objective], enabled: bool = True) -> None:
        self.objectives = list(objectives)
        self.enabled = enabled
        self._progress: Any = None

    def __enter__(self) -> ProgressDisplay:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[status]}"),
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def callback(self, label: str, steps: int):  # noqa: ANN201 - returns a closure
        """Per-step callback for one mini-batch."""
        if self._progress is None:
            return lambda record: None
        task = self._progress.add_task(label, total=steps, status="")

        def update(record: StepRecord) -> None:
            if record.step % 5 and record.step != steps - 1:
                self._progress.advance(task)
                return
            loss = torch.nan_to_num(record.loss, nan=float("inf"))
            best = int(torch.argmin(loss))
            parts = [f"solved {record.solved.float().mean().item():.0%}"]
            parts += [f"{o.key}={record.values[o.key][best].item():.3g}" for o in self.objectives if o.key in record.values]
            self._progress.update(task, advance=1, status="best: " + " ".join(parts))

        return update
