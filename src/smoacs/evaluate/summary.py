"""Run-level summary: the rate of every criterion and of success, and distinct successes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def summarize(rows: Sequence[dict[str, Any]], criteria: Sequence[str]) -> dict[str, Any]:
    """One summary row.

    Rates are over all candidates (quarantined ones count as failures). ``distinct_success_formulas`` counts
    distinct reduced formulas among successes; ``unique_success_rate`` is that count over the number of successes.
    For every oracle-checked property: ``<property>_oracle_agreement``, the fraction of successes that the oracle
    also places inside the criterion, and ``<property>_oracle_mae``, the mean |prediction − oracle| over successes.
    """
    n = len(rows)
    successes = [row for row in rows if row["success"]]
    summary: dict[str, Any] = {"n_candidates": n, "n_success": len(successes)}
    summary["success_rate"] = len(successes) / n if n else 0.0
    for criterion in criteria:
        summary[f"{criterion[:-3]}_rate"] = sum(bool(row.get(criterion)) for row in rows) / n if n else 0.0
    formulas = {row["formula"] for row in successes}
    summary["distinct_success_formulas"] = len(formulas)
    summary["unique_success_rate"] = len(formulas) / len(successes) if successes else 0.0
    summary["n_quarantined"] = sum(bool(row.get("quarantined")) for row in rows)
    for key in sorted({k for row in rows for k in row if k.endswith("_oracle")}):
        prop = key[: -len("_oracle")]
        agree = [bool(row[f"{key}_ok"]) for row in successes]
        error = [abs(row[key] - row[prop]) for row in successes]
        summary[f"{prop}_oracle_agreement"] = sum(agree) / len(agree) if agree else 0.0
        summary[f"{prop}_oracle_mae"] = sum(error) / len(error) if error else 0.0
    return summary
