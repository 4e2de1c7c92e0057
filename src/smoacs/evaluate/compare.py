"""``smoacs compare``: one table across run directories (any search method), as Markdown and CSV.

Per run: the method and its budget (predictor evaluations per candidate) as run.json records them, the candidates,
the success rate and every criterion's rate, distinct successful compositions (reduced formulas), the unique and
novel success rates, wall time (run.json's ``timings.total_s``: loading models, search, evaluation and writing) and
the search time alone (the mini-batches' wall time less their evaluation), distinct successes per wall-second and
per search-second, the held-out judge's agreement on the successes (``<property>_judge_agreement``: the check that
does not rest on the optimised model), and — when one of the
runs is an ``enumerate`` run — **coverage**: the fraction of the enumerate run's successful compositions (the ground
truth of the enumerated space) that this run also returned as successes (by reduced formula; with several enumerate
runs, the union of their successes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smoacs.errors import ConfigError
from smoacs.evaluate.summary import criterion_columns, summarize
from smoacs.io.rundir import RunDirectory, parse_value
from smoacs.io.writers import csv_text

GROUND_TRUTH_METHOD = "enumerate"


@dataclass
class RunRecord:
    """What the table reads of one run directory."""

    path: Path
    method: str
    budget: Any
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    criteria: list[str]
    wall_s: float
    search_s: float
    n_evaluations: float

    @property
    def success_formulas(self) -> set[str]:
        """Reduced formulas of the successes."""
        return {str(row["formula"]) for row in self.rows if row["success"]}


def load_run(path: str | Path) -> RunRecord:
    """A run directory's rows (result.csv), summary (recomputed from them), method, budget and timings."""
    directory = RunDirectory(path)
    meta = directory.read_meta()
    if not directory.result_csv.is_file():
        raise ConfigError(f"{directory.path} has no {directory.result_csv.name} (the run wrote no mini-batch)")
    rows = [{key: parse_value(key, value) for key, value in row.items()} for row in directory.read_rows()]
    columns = list(rows[0]) if rows else []
    criteria = criterion_columns(columns)
    search = meta.get("search") or {}
    method = search.get("method") or meta["config"].get("search", {}).get("method", "gradient")
    budget = search.get("budget", meta["config"].get("optimizer", {}).get("steps", ""))
    timings = meta.get("timings") or {}
    batches = timings.get("batches", [])
    search_s = sum(b.get("wall_s", 0.0) - b.get("evaluate_s", 0.0) for b in batches)
    evaluations = sum(b.get("n_evaluations", 0.0) for b in batches) or (
        float(budget) * len(rows) if isinstance(budget, int | float) else 0.0
    )
    wall = float(timings.get("total_s", sum(b.get("wall_s", 0.0) for b in batches)))
    return RunRecord(directory.path, method, budget, rows, summarize(rows, criteria), criteria, wall, search_s, evaluations)


def ground_truth(runs: Sequence[RunRecord]) -> set[str] | None:
    """The successful compositions of the enumerate runs among ``runs`` (union), or None without one."""
    truth = [run.success_formulas for run in runs if run.method == GROUND_TRUTH_METHOD]
    return set().union(*truth) if truth else None


def comparison_rows(runs: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """One row per run (see the module docstring); criteria missing from a run are empty."""
    truth = ground_truth(runs)
    criteria = list(dict.fromkeys(c for run in runs for c in run.criteria))
    judged = list(dict.fromkeys(k for run in runs for k in run.summary if k.endswith("_judge_agreement")))
    out = []
    for run in runs:
        s = run.summary
        distinct = len(run.success_formulas)
        row: dict[str, Any] = {
            "run": str(run.path), "method": run.method, "budget": run.budget, "evaluations": int(run.n_evaluations),
            "candidates": s["n_candidates"], "success_rate": s["success_rate"],
        }  # fmt: skip
        row.update({f"{c[:-3]}_rate": s.get(f"{c[:-3]}_rate", "") for c in criteria})
        row.update(
            distinct_successes=distinct, unique_success_rate=s.get("unique_success_rate", ""),
            novel_success_rate=s.get("novel_success_rate", ""), wall_s=run.wall_s, search_s=run.search_s,
            distinct_per_s=distinct / run.wall_s if run.wall_s > 0 else "",
            distinct_per_search_s=distinct / run.search_s if run.search_s > 0 else "",
        )  # fmt: skip
        row.update({key: run.summary.get(key, "") for key in judged})  # the held-out judge: an independent check
        if truth is not None:
            row["coverage"] = len(run.success_formulas & truth) / len(truth) if truth else ""
            row["truth_size"] = len(truth)
        out.append(row)
    return out


def _cell(value: Any) -> str:  # noqa: ANN401
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table (floats to 3 decimals)."""
    if not rows:
        return ""
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def compare_runs(paths: Sequence[str | Path], out: str | Path) -> tuple[list[dict[str, Any]], Path, Path]:
    """Compare run directories; write ``<out>.md`` and ``<out>.csv``; (rows, Markdown path, CSV path)."""
    if not paths:
        raise ConfigError("compare needs at least one run directory")
    rows = comparison_rows([load_run(path) for path in paths])
    stem = Path(out)
    if stem.suffix in (".md", ".csv"):
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    md, table = stem.parent / f"{stem.name}.md", stem.parent / f"{stem.name}.csv"  # a name like run_2.5 keeps its dot
    md.write_text(markdown_table(rows), encoding="utf-8")
    table.write_text(csv_text(rows, list(rows[0]), header=True), encoding="utf-8")
    return rows, md, table
