"""``report.md``: a run's target and criteria, the summary table and the top candidates, as Markdown.

Ranking of candidates (:func:`rank_candidates`): successes first; then by the total *evaluation* violation (how far,
in each property's own unit, a value lies outside its evaluation criterion — 0 for satisfied criteria; NaN counts as
infinitely far); then by the distance to the target (Σ |y − target| over window objectives); then by id. Successes
are therefore ordered by closeness to the target, failures by how nearly they pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from smoacs.evaluate.known import known_sentences
from smoacs.io.rundir import REPORT_MD
from smoacs.objectives.terms import Objective

#: Paper's Table columns (SMOACS, Table 1): A target window, B formation energy, C tolerance, D neutrality,
#: E structure preserved.
PAPER_COLUMNS = (
    ("E: structure preserved", "perovskite_rate"),
    ("D: neutral", "neutral_rate"),
    ("C: tolerance", "tolerance_rate"),
    ("B: E_f", "formation_energy_rate"),
)


def _float(value: Any) -> float:  # noqa: ANN401
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def violation(objective: Objective, value: float) -> float:
    """How far ``value`` lies outside the objective's evaluation criterion (0 inside; inf for NaN)."""
    return objective.violation(value)


def _truthy(value: Any) -> bool:  # noqa: ANN401
    return value is True or value == "True"


def rank_candidates(rows: Sequence[dict[str, Any]], objectives: Sequence[Objective]) -> list[dict[str, Any]]:
    """Rows sorted as described in the module docstring."""

    def key(row: dict[str, Any]) -> tuple[bool, float, float, str]:
        total = sum(violation(o, _float(row.get(o.key))) for o in objectives)
        offset = sum(o.target_offset(_float(row.get(o.key))) for o in objectives)
        return (not _truthy(row["success"]), total, offset if not math.isnan(offset) else math.inf, str(row["id"]))

    return sorted(rows, key=key)


def _cell(value: Any, digits: int = 3) -> str:  # noqa: ANN401
    if value is None or value == "":
        return "–"
    if isinstance(value, bool) or value in ("True", "False"):
        return "yes" if _truthy(value) else "no"
    number = _float(value)
    if math.isnan(number):
        return str(value)
    return f"{number:.{digits}f}"


def _rate(value: Any) -> str:  # noqa: ANN401
    number = _float(value)
    return "–" if value in (None, "") or math.isnan(number) else f"{100 * number:.1f} %"


def _known_cell(row: dict[str, Any], prop: str) -> str:
    """``0.000 GLLB-SC, composition ✗`` — a reference value, its theory, how it matched and its verdict."""
    value = row.get(f"{prop}_reference")
    if value in (None, ""):
        return "–"
    ok = row.get(f"{prop}_reference_ok", "")
    mark = {True: " ✓", False: " ✗"}.get(ok if isinstance(ok, bool) else _truthy(ok) if ok in ("True", "False") else None, "")
    return f"{_cell(value)} {row.get(f'{prop}_reference_theory', '')}, {row.get('reference_match', '')}{mark}"


def _table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return lines


def report_markdown(
    rows: Sequence[dict[str, Any]],
    summary: dict[str, Any],
    objectives: Sequence[Objective],
    info: dict[str, Any],
    top: int = 20,
) -> str:
    """Markdown text of report.md.

    Args:
        rows: result rows (as in result.csv / evaluation.csv, ``cif`` relative to the run directory).
        summary: the summary row.
        objectives: the run's objectives (criteria and ranking).
        info: ``title``, ``source`` (which file the numbers come from), ``predictors`` and ``judge`` (property →
            name of the held-out judge), ``criteria`` (extra criteria described in words), ``references`` (novelty reference sets).
        top: candidates listed.
    """
    lines = [f"# {info.get('title', 'smoacs run')}", "", f"Numbers from `{info.get('source', 'result.csv')}`.", ""]
    lines += ["## Target and success criteria", ""]
    lines += [f"- {o.describe()}" for o in objectives]
    lines += [f"- {text}" for text in info.get("criteria", [])]
    predictors = ", ".join(f"{p}: `{n}`" for p, n in info.get("predictors", {}).items())
    judges = ", ".join(f"{p}: `{n}`" for p, n in info.get("judge", {}).items()) or "none"
    lines += ["", f"Predictors: {predictors}. Held-out judges (never seen by the optimiser; reported, not in success): "
              f"{judges}.", ""]
    lines += [f"Novelty references: {info.get('references') or 'none (novelty not assessed)'}.", ""]

    lines += ["## Summary", ""]
    window = next((o for o in objectives if o.kind == "window"), None)
    columns: list[tuple[str, str]] = []
    if window is not None:
        columns.append((f"A: {window.key} window", f"{window.key}_rate"))
    columns += [c for c in reversed(PAPER_COLUMNS) if c[1] in summary]
    used = {key for _, key in columns}
    columns += [(k[: -len("_rate")], k) for k in summary if k.endswith("_rate") and k not in used
                and k not in ("success_rate", "unique_success_rate", "novel_success_rate")]  # fmt: skip
    columns += [("success", "success_rate"), ("unique", "unique_success_rate"), ("novel", "novel_success_rate")]
    columns += [(f"{k[: -len('_judge_agreement')]} judge agreement", k) for k in summary if k.endswith("_judge_agreement")]
    columns += [(f"{k[: -len('_reference_agreement')]} confirmed by reference", k) for k in summary
                if k.endswith("_reference_agreement")]  # fmt: skip
    header = ["candidates", *(name for name, _ in columns)]
    lines += _table(header, [[str(summary.get("n_candidates", len(rows))), *(_rate(summary.get(k)) for _, k in columns)]])
    counts = [f"{summary.get('n_success', 0)} successes"]
    if "n_unique_success" in summary:
        counts.append(f"{summary['n_unique_success']} structurally distinct")
    if summary.get("n_novel_success", "") != "":
        counts.append(f"{summary['n_novel_success']} novel")
    counts.append(f"{summary.get('distinct_success_formulas', 0)} distinct formulas")
    if "distinct_success_hosts" in summary:
        counts.append(f"{summary['distinct_success_hosts']} distinct host compositions")
    lines += ["", "Rates are over all candidates; unique, novel and judge agreement are over successes. "
              + ", ".join(counts) + ".", ""]  # fmt: skip
    if summary.get("n_screened"):
        lines += [f"{summary['n_screened']} candidates started from the screen (compositions checked at their "
                  f"equilibrium cell before the search, templates `screen-…`, left out of the gradient search); "
                  f"{summary['n_screened_success']} of them are successes.", ""]  # fmt: skip
    known = known_sentences(rows, summary)
    if known:
        lines += ["### What the reference sets already know", ""]
        lines += [f"- {text}" for text in known]
        lines += ["", "Confirmed by reference: share of the successes with a reference value whose value meets the "
                  "criterion (`<property>_reference_ok` in the CSV; `structure` matches are StructureMatcher fits, "
                  "`composition` matches share only the reduced formula).", ""]  # fmt: skip
    if not summary.get("n_success"):
        lines += ["**No successes**: no candidate met every criterion, so the quantities over successes (unique, "
                  "novel, judge agreement and error) were not measured (–, empty in the summary CSV).", ""]  # fmt: skip

    lines += _designs(rows)
    ranked = rank_candidates(rows, objectives)[:top]
    n_success = sum(_truthy(r["success"]) for r in rows)
    lines += [f"## Top candidates ({min(top, len(rows))} of {len(rows)}; {n_success} successes)", ""]
    props = list(info.get("predictors", {}))
    judge_props = [p for p in info.get("judge", {}) if rows and f"{p}_judge" in rows[0]]
    known_props = [p for p in props if rows and f"{p}_reference" in rows[0]]
    with_design = bool(rows) and "design" in rows[0]
    header = ["id", "formula", "success", *(["design (host : substituents)"] if with_design else []), *props,
              *(f"{p} (judge)" for p in judge_props), *(f"{p} (reference)" for p in known_props), "tolerance",
              "d_min (Å)", "unique", "novel", "CIF"]  # fmt: skip
    body = []
    for row in ranked:
        cif = row.get("cif", "")
        body.append(
            [row["id"], str(row["formula"]), _cell(row["success"]), *([str(row["design"])] if with_design else []),
             *(_cell(row.get(p)) for p in props), *(_cell(row.get(f"{p}_judge")) for p in judge_props),
             *(_known_cell(row, p) for p in known_props), _cell(row.get("tolerance")),
             _cell(row.get("min_distance")), _cell(row.get("unique")) if _truthy(row["success"]) else "–",
             (_cell(row.get("novel")) if _truthy(row["success"]) else "–")
             + (f" (= {row['reference_id']})" if row.get("reference_match") == "structure" else ""),
             f"[{Path(cif).name}]({cif})" if cif else "–"]  # fmt: skip
        )
    lines += _table(header, body)
    lines += ["", "Order: successes first, then by total violation of the evaluation criteria, then by distance to "
              "the target window's centre (see `smoacs.io.report`).", ""]  # fmt: skip
    return "\n".join(lines)


def _designs(rows: Sequence[dict[str, Any]], top: int = 10) -> list[str]:
    """The successes grouped by host composition (most frequent first), with their substitutions."""
    successes = [row for row in rows if _truthy(row["success"])]
    if not successes or "host" not in successes[0]:
        return []
    by_host: dict[str, list[dict[str, Any]]] = {}
    for row in successes:
        by_host.setdefault(str(row["host"]), []).append(row)
    ranked = sorted(by_host.items(), key=lambda item: (-len(item[1]), item[0]))
    lines = [f"## Designs: host + substituents ({len(by_host)} host compositions among {len(successes)} successes)", ""]
    body = []
    for host, members in ranked[:top]:
        examples = "; ".join(f"{r['id']}: {r['design']}" for r in members[:3]) + (" …" if len(members) > 3 else "")
        body.append([host, str(len(members)), examples])
    lines += _table(["host", "successes", "designs (first 3)"], body)
    if len(ranked) > top:
        lines += ["", f"… and {len(ranked) - top} more host compositions (result.csv, `host` and `design`)."]
    return [*lines, ""]


def write_report(out_dir: Path, *args: Any, **kwargs: Any) -> Path:  # noqa: ANN401
    """Write ``report.md`` into ``out_dir`` (arguments as :func:`report_markdown`); returns its path."""
    path = Path(out_dir) / REPORT_MD
    path.write_text(report_markdown(*args, **kwargs), encoding="utf-8")
    return path
