"""Run-level summary: the rate of every criterion and of success, and distinct successes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from smoacs.evaluate.known import known_summary
from smoacs.templates.base import SCREENED_PREFIX

#: The value of a quantity over successes when there is none (written as an empty cell).
NOT_MEASURED = ""
#: ``_ok`` columns that are reported next to the verdict but are not criteria of ``success`` (judges, reference
#: values; ``_oracle_ok`` in run directories written before judges were called so).
REPORTED_ONLY = ("_judge_ok", "_oracle_ok", "_reference_ok")


def criterion_columns(columns: Sequence[str]) -> list[str]:
    """The criteria among the columns of a stored result.csv (its ``<name>_ok`` columns that join ``success``).

    A run in progress knows its criteria (``Evaluation.criteria``); this reads them back from a file, which keeps
    only column names.
    """
    return [c for c in columns if c.endswith("_ok") and not c.endswith(REPORTED_ONLY)]


def _finite(value: Any) -> bool:  # noqa: ANN401
    return isinstance(value, int | float) and bool(np.isfinite(value))


def summarize(rows: Sequence[dict[str, Any]], criteria: Sequence[str]) -> dict[str, Any]:
    """One summary row.

    Rates are over all candidates (quarantined ones count as failures). ``distinct_success_formulas`` counts
    distinct reduced formulas among successes, ``distinct_success_hosts`` distinct host compositions (each site
    group's most common element, :mod:`smoacs.evaluate.composition`). When the rows carry the structure-matching columns
    (:func:`smoacs.evaluate.matching.annotate_matching`): ``unique_success_rate`` = successes that are the first of
    their StructureMatcher group / successes, and ``novel_success_rate`` = successes matching no reference structure /
    successes ("" when no reference set was used); ``n_unique_success``, ``n_novel_success`` are the counts.
    For every judged property: ``<property>_judge_agreement``, the fraction of successes that the held-out judge
    also places inside the criterion, and ``<property>_judge_mae``, the mean |prediction − judge| over successes.
    For every ensemble property: ``<property>_spread_median``, the median member spread over successes.
    With a relaxation stage: ``unrelaxed_success_rate`` (physics on: ``success`` is the relaxed verdict) or
    ``relaxed_success_rate`` (a relaxation check), both over all candidates;
    ``median_abs_volume_change`` (|V_relaxed / V − 1|, all candidates and successes only).
    With reference values (:func:`smoacs.evaluate.known.known_summary`): ``n_success_known`` and its split by
    structure / composition match, and per property how many known values confirm or contradict the criterion.
    With screened starts (templates named :data:`~smoacs.templates.base.SCREENED_PREFIX`…): ``n_screened``
    candidates started from the screen and ``n_screened_success`` of them are successes.
    Quantities over successes are empty (``""``, :data:`NOT_MEASURED`) when there is no success: nothing was measured.
    """
    n = len(rows)
    successes = [row for row in rows if row["success"]]
    summary: dict[str, Any] = {"n_candidates": n, "n_success": len(successes)}
    summary["success_rate"] = len(successes) / n if n else 0.0
    for criterion in criteria:
        summary[f"{criterion[:-3]}_rate"] = sum(bool(row.get(criterion)) for row in rows) / n if n else 0.0
    formulas = {row["formula"] for row in successes}
    summary["distinct_success_formulas"] = len(formulas)
    if rows and "host" in rows[0]:  # host compositions (smoacs.evaluate.composition): CsPbI3 for CsPb0.78Sn0.22I3
        summary["distinct_success_hosts"] = len({row["host"] for row in successes})
    if rows and "unique" in rows[0]:
        n_unique = sum(bool(row["unique"]) for row in successes)
        summary["n_unique_success"] = n_unique
        summary["unique_success_rate"] = n_unique / len(successes) if successes else NOT_MEASURED
    if rows and "novel" in rows[0]:
        assessed = any(row["novel"] != "" for row in rows)
        n_novel = sum(row["novel"] is True for row in successes)
        summary["n_novel_success"] = n_novel if assessed else ""
        summary["novel_success_rate"] = (n_novel / len(successes) if successes else NOT_MEASURED) if assessed else ""
    summary["n_quarantined"] = sum(bool(row.get("quarantined")) for row in rows)
    screened = [row for row in rows if str(row.get("template", "")).startswith(SCREENED_PREFIX)]
    if screened:  # smoacs.search.screen: these did not come out of the search
        summary["n_screened"] = len(screened)
        summary["n_screened_success"] = sum(bool(row["success"]) for row in screened)
    for verdict in ("unrelaxed_success", "relaxed_success"):  # the other verdict of a relaxation stage
        if rows and verdict in rows[0]:
            count = sum(bool(row[verdict]) for row in rows)
            summary[f"n_{verdict}"] = count
            summary[f"{verdict}_rate"] = count / n
    if rows and "relax_status" in rows[0]:  # smoacs.evaluate.relaxation
        changes = [abs(row["volume_change"]) for row in rows if _finite(row["volume_change"])]
        summary["median_abs_volume_change"] = float(np.median(changes)) if changes else ""
        judged = [abs(row["volume_change"]) for row in successes if _finite(row["volume_change"])]
        summary["median_abs_volume_change_success"] = float(np.median(judged)) if judged else ""
    for key in sorted({k for row in rows for k in row if k.endswith("_judge")}):
        prop = key[: -len("_judge")]
        agree = [bool(row[f"{key}_ok"]) for row in successes]
        error = [abs(row[key] - row[prop]) for row in successes]
        summary[f"{prop}_judge_agreement"] = sum(agree) / len(agree) if agree else NOT_MEASURED
        summary[f"{prop}_judge_mae"] = sum(error) / len(error) if error else NOT_MEASURED
    for key in sorted({k for row in rows for k in row if k.endswith("_spread")}):
        spreads = [row[key] for row in successes if _finite(row[key])]
        summary[f"{key}_median"] = float(np.median(spreads)) if spreads else NOT_MEASURED
    summary.update(known_summary(rows))  # reference values of matched entries (smoacs.evaluate.known)
    return summary
