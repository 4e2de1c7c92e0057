"""The progress display: honest naming ("soft criteria met"), an ETA, plain lines when stdout is not a terminal."""

from __future__ import annotations

import io

import torch

from smoacs.objectives import Window
from smoacs.optimize.loop import StepRecord
from smoacs.optimize.progress import ProgressDisplay


def _record(step: int, solved: list[bool]) -> StepRecord:
    n = len(solved)
    return StepRecord(step, 1e-2, torch.arange(n, dtype=torch.float32), {"band_gap": torch.linspace(1.0, 2.0, n)},
                      torch.tensor(solved), torch.ones(n, dtype=torch.bool))  # fmt: skip


def test_plain_mode_prints_one_line_per_batch_with_an_eta() -> None:
    stream = io.StringIO()
    with ProgressDisplay([Window("band_gap", 2.0)], n_batches=2, plain=True, stream=stream) as display:
        for batch in (1, 2):
            callback = display.callback(f"batch {batch}/2", steps=3)
            for step in range(3):
                callback(_record(step, [True, False, False, False]))
        with display.stage("batch 2/2: matching and writing"):
            pass
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("batch 1/2: 3 steps in ") and "soft criteria met 25% best: band_gap=1" in lines[0]
    assert "ETA " in lines[0] and "for 1 more mini-batch(es)" in lines[0]
    assert lines[1].endswith("; last mini-batch")
    assert lines[2].startswith("batch 2/2: matching and writing: done in ")
    assert "solved" not in stream.getvalue()


def test_plain_is_the_default_when_stdout_is_not_a_terminal() -> None:
    assert ProgressDisplay([], stream=io.StringIO()).plain
    quiet = io.StringIO()
    with ProgressDisplay([Window("band_gap", 2.0)], enabled=False, stream=quiet) as display:
        display.callback("batch 1/1", 1)(_record(0, [True]))
        with display.stage("x"):
            pass
    assert quiet.getvalue() == ""


def test_terminal_mode_shows_an_eta_column() -> None:
    from rich.progress import TimeRemainingColumn

    with ProgressDisplay([Window("band_gap", 2.0)], plain=False) as display:
        callback = display.callback("batch 1/1", steps=1)
        callback(_record(0, [False, True]))
        columns = display.bar.columns
        (task,) = display.bar.tasks
    assert any(isinstance(c, TimeRemainingColumn) for c in columns)
    assert task.fields["status"].startswith("soft criteria met 50%")
