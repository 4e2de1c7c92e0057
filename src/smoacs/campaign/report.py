"""campaign.csv (one row per run), campaign.md (mean ± sd over seeds per group) and the campaign's plots.

A *group* is the cells that differ only in ``seed``: its statistics are the mean and the sample standard deviation
(n − 1) of each summary quantity over the group's finished runs (``—`` where fewer than two runs measured it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from smoacs.campaign.cell import CellOutcome
from smoacs.campaign.spec import Cell

CAMPAIGN_CSV = "campaign.csv"
CAMPAIGN_MD = "campaign.md"
SUCCESS_PNG = "campaign_success.png"
TIME_PNG = "campaign_time.png"
#: Columns of every row before the overrides and the summary.
STATUS_COLUMNS = ("name", "status", "attempts", "wall_s", "run_s", "cpu_s", "host", "node", "error")
#: Timings averaged in the tables, after the run's quantities.
TIMINGS = ("run_s", "cpu_s")
#: Columns that identify runs, not measure them.
KEY_SEED = "seed"


def campaign_rows(cells: Sequence[Cell], outcomes: Sequence[CellOutcome]) -> pd.DataFrame:
    """One row per run: name, the grid values, status and timings, then its summary row's quantities."""
    rows = []
    for cell, outcome in zip(cells, outcomes, strict=True):
        row: dict[str, Any] = {"name": cell.name, **{k: _plain(v) for k, v in cell.overrides.items()}}
        row.update({key: getattr(outcome, key) for key in STATUS_COLUMNS if key != "name"})
        row.update({key: value for key, value in outcome.summary.items() if key not in row})
        rows.append(row)
    return pd.DataFrame(rows)


def _plain(value: Any) -> Any:  # noqa: ANN401 - a grid value
    """A grid value as one CSV cell (lists and mappings as text)."""
    if isinstance(value, list | tuple):
        return " ".join(map(str, value))
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items())
    return value


def measured_columns(frame: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """The summary quantities worth averaging: rates, agreements, counts of distinct successes, run time."""
    skip = set(keys) | set(STATUS_COLUMNS) - set(TIMINGS)
    wanted = []
    for column in frame.columns:
        if column in skip or column.startswith("n_") and column not in ("n_unique_success", "n_novel_success"):
            continue
        if column.endswith(("_rate", "_agreement", "_mae")) or column in ("distinct_success_formulas", *TIMINGS):
            wanted.append(column)
    first = [c for c in ("success_rate",) if c in wanted]  # success first, timings last
    last = [c for c in TIMINGS if c in wanted]
    return first + [c for c in wanted if c not in first and c not in last] + last


@dataclass(frozen=True)
class GroupStat:
    """Mean and sample sd of one quantity over a group's runs (sd NaN with fewer than two values)."""

    mean: float
    sd: float
    n: int

    def text(self, digits: int = 3) -> str:
        """``mean ± sd`` (``—`` when nothing was measured; the mean alone with one value)."""
        if self.n == 0:
            return "—"
        if self.n == 1 or math.isnan(self.sd):
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.sd:.{digits}f}"


def group_stats(
    frame: pd.DataFrame, keys: Sequence[str], columns: Sequence[str]
) -> list[tuple[dict[str, Any], int, int, dict[str, GroupStat]]]:
    """Per group of ``keys`` (file order): (its key values, finished runs, runs, column → statistic over the
    finished runs)."""
    finished = frame[frame["status"].isin(["finished", "skipped"])] if "status" in frame else frame
    out = []
    groups = frame.groupby(list(keys), sort=False, dropna=False) if keys else [((), frame)]
    for values, group in groups:
        values = values if isinstance(values, tuple) else (values,)
        done = finished.loc[finished.index.intersection(group.index)]
        stats = {}
        for column in columns:
            numbers = pd.to_numeric(done[column], errors="coerce").dropna() if column in done else pd.Series([], dtype=float)
            sd = float(numbers.std(ddof=1)) if len(numbers) > 1 else float("nan")
            stats[column] = GroupStat(float(numbers.mean()) if len(numbers) else float("nan"), sd, len(numbers))
        out.append((dict(zip(keys, values, strict=True)), len(done), len(group), stats))
    return out


def group_keys(grid_keys: Sequence[str]) -> list[str]:
    """The grid keys that define groups: all but ``seed``."""
    return [key for key in grid_keys if key != KEY_SEED]


def markdown_table(frame: pd.DataFrame, keys: Sequence[str], columns: Sequence[str], seeds_label: str = "runs") -> str:
    """The mean ± sd table of ``columns`` per group of ``keys``, as Markdown."""
    header = [*keys, seeds_label, *columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for values, n_done, total, stats in group_stats(frame, keys, columns):
        cells = [str(values[k]) for k in keys] + [f"{n_done}/{total}"] + [stats[c].text(1 if c in TIMINGS else 3) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_campaign(directory: Path, title: str, cells: Sequence[Cell], outcomes: Sequence[CellOutcome],
                   grid_keys: Sequence[str], header: str = "") -> pd.DataFrame:  # fmt: skip
    """Write campaign.csv, campaign.md and the plots into ``directory``; returns campaign.csv's table."""
    frame = campaign_rows(cells, outcomes)
    frame.to_csv(directory / CAMPAIGN_CSV, index=False)
    keys = group_keys(grid_keys)
    columns = measured_columns(frame, grid_keys)
    failed = frame[frame["status"] == "failed"]
    parts = [f"# Campaign {title}\n", header,
             f"{len(frame)} runs: {int((frame['status'] != 'failed').sum())} finished "
             f"({int((frame['status'] == 'skipped').sum())} of them already finished before), {len(failed)} failed. "
             f"Mean ± sample sd over {'seeds' if KEY_SEED in grid_keys else 'runs'} per group; "
             f"one row per run in [{CAMPAIGN_CSV}]({CAMPAIGN_CSV}).\n",
             markdown_table(frame, keys, columns)]  # fmt: skip
    if len(failed):
        parts.append("## Failed runs\n\n" + "".join(f"- `{r['name']}` ({r['attempts']} attempts): {r['error']}\n" for _, r in failed.iterrows()))
    plotted = plot_campaign(directory, frame, keys)
    parts.append("".join(f"![{name}]({name})\n\n" for name in plotted))
    (directory / CAMPAIGN_MD).write_text("\n".join(p for p in parts if p))
    return frame


def plot_campaign(directory: Path, frame: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """Success rate and run time per group (mean ± sd bars) as PNGs; the file names written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = group_stats(frame, keys, ["success_rate", "run_s"])
    labels = [", ".join(f"{k}={v}" for k, v in values.items()) or "all" for values, _, _, _ in stats]
    written = []
    for column, name, ylabel in (("success_rate", SUCCESS_PNG, "success rate"), ("run_s", TIME_PNG, "run time (s)")):
        means = [s[column].mean for _, _, _, s in stats]
        if all(math.isnan(m) for m in means):
            continue
        sds = [0.0 if math.isnan(s[column].sd) else s[column].sd for _, _, _, s in stats]
        fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(labels) + 2), 3.6))
        ax.bar(range(len(labels)), means, yerr=sds, capsize=3, color="#4878a8")
        ax.set_xticks(range(len(labels)), labels, rotation=40, ha="right", fontsize=8)
        ax.set_ylabel(ylabel + " (mean ± sd)")
        fig.savefig(directory / name, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(name)
    return written
