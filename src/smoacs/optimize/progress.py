"""Progress of a run: per step, the share of candidates meeting every *soft* (training) criterion and the best values.

"soft criteria met" is the share of continuous candidates whose loss is zero (every training criterion, with the
training margins, met at that step): not the success rate, which is measured later on the discrete candidates.

On a terminal a `rich` bar per mini-batch shows steps, elapsed time and an ETA; when stdout is not a terminal
(a log file, a pipe) one plain line per mini-batch is printed instead, with the time left for the remaining
mini-batches. :meth:`ProgressDisplay.stage` shows a long stage (evaluation, matching, relaxation) while it runs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any

import torch

from smoacs.objectives.terms import Objective
from smoacs.optimize.loop import StepRecord

SOFT_LABEL = "soft criteria met"


def best_values(record: StepRecord, objectives: Sequence[Objective]) -> str:
    """``soft criteria met NN%`` and the objective values of the lowest-loss candidate of a step."""
    loss = torch.nan_to_num(record.loss, nan=float("inf"))
    best = int(torch.argmin(loss))
    parts = [f"{SOFT_LABEL} {record.solved.float().mean().item():.0%}", "best:"]
    parts += [f"{o.key}={record.values[o.key][best].item():.3g}" for o in objectives if o.key in record.values]
    return " ".join(parts)


class ProgressDisplay:
    """Context manager owning the progress output; ``callback(batch_label, steps)`` gives a per-step callback.

    Args:
        objectives: the run's objectives (their values are shown).
        enabled: show anything at all.
        n_batches: mini-batches still to run (plain mode: the ETA of the remaining ones), or None.
        plain: one line per mini-batch instead of a bar; None: when ``stream`` is not a terminal.
        stream: where plain lines go (default stdout).
    """

    def __init__(
        self,
        objectives: Sequence[Objective],
        enabled: bool = True,
        n_batches: int | None = None,
        plain: bool | None = None,
        stream: IO[str] | None = None,
    ) -> None:
        self.objectives = list(objectives)
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stdout
        self.plain = (not self.stream.isatty()) if plain is None else plain
        self.n_batches = n_batches
        self._progress: Any = None
        self._durations: list[float] = []

    @property
    def bar(self) -> Any:  # noqa: ANN401 - rich.progress.Progress
        """The rich progress bar on a terminal (inside the context), else None."""
        return self._progress

    def __enter__(self) -> ProgressDisplay:
        if self.enabled and not self.plain:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[status]}"),
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def callback(self, label: str, steps: int):  # noqa: ANN201 - returns a closure
        """Per-step callback for one mini-batch."""
        if not self.enabled:
            return lambda record: None
        if self.plain:
            return self._plain_callback(label, steps)
        task = self._progress.add_task(label, total=steps, status="")

        def update(record: StepRecord) -> None:
            if record.step % 5 and record.step != steps - 1:
                self._progress.advance(task)
                return
            self._progress.update(task, advance=1, status=best_values(record, self.objectives))

        return update

    def _plain_callback(self, label: str, steps: int):  # noqa: ANN202
        start = time.perf_counter()

        def update(record: StepRecord) -> None:
            if record.step != steps - 1:
                return
            elapsed = time.perf_counter() - start
            self._durations.append(elapsed)
            text = f"{label}: {steps} steps in {elapsed:.1f} s; {best_values(record, self.objectives)}"
            if self.n_batches is not None:
                left = self.n_batches - len(self._durations)
                mean = sum(self._durations) / len(self._durations)
                text += f"; ETA {left * mean:.0f} s for {left} more mini-batch(es)" if left > 0 else "; last mini-batch"
            self._line(text)

        return update

    @contextmanager
    def stage(self, text: str) -> Iterator[None]:
        """Show ``text`` while a long stage runs (a spinner on a terminal, a line with its duration otherwise)."""
        if not self.enabled:
            yield
            return
        start = time.perf_counter()
        if self.plain:
            yield
            self._line(f"{text}: done in {time.perf_counter() - start:.1f} s")
            return
        task = self._progress.add_task(text, total=None, status="")
        try:
            yield
        finally:
            self._progress.remove_task(task)
