"""smoacs compare: one table across run directories, coverage of an enumerate run's successes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from smoacs.errors import ConfigError
from smoacs.evaluate.compare import compare_runs, comparison_rows, load_run, markdown_table

COLUMNS = ["id", "formula", "success", "band_gap_ok", "tolerance_ok", "unique", "novel"]


def write_run(path: Path, method: str, budget: int, rows: list[tuple[str, bool, bool, bool]], total_s: float) -> Path:
    """A minimal run directory: run.json (config, search, timings) and result.csv (formula, criteria)."""
    path.mkdir(parents=True)
    meta = {"config": {"search": {"method": method}, "optimizer": {"steps": 200}},
            "search": {"method": method, "budget": budget},
            "timings": {"total_s": total_s, "batches": [{"wall_s": total_s - 1.0, "evaluate_s": 1.0,
                                                         "n_evaluations": budget * len(rows)}]}}  # fmt: skip
    (path / "run.json").write_text(json.dumps(meta))
    with (path / "result.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for i, (formula, gap, tol, unique) in enumerate(rows):
            writer.writerow([f"c{i:05d}", formula, gap and tol, gap, tol, unique, "True"])
    return path


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    truth = write_run(tmp_path / "enum", "enumerate", 40,
                      [("KZnF3", True, True, True), ("NaGeF3", True, True, True), ("CsPbI3", True, False, True),
                       ("BaSnO3", True, True, True), ("SrTiO3", False, True, True)], 10.0)  # fmt: skip
    tpe = write_run(tmp_path / "tpe", "tpe", 200,
                    [("KZnF3", True, True, True), ("KZnF3", True, True, False), ("KCdCl2F", True, True, True),
                     ("SrTiO3", False, False, True)], 4.0)  # fmt: skip
    return [truth, tpe]


def test_rows_count_distinct_rates_times_and_coverage(runs: list[Path]) -> None:
    truth, tpe = comparison_rows([load_run(path) for path in runs])
    assert truth["method"] == "enumerate" and truth["budget"] == 40 and truth["evaluations"] == 200
    assert truth["success_rate"] == pytest.approx(3 / 5) and truth["distinct_successes"] == 3
    assert truth["band_gap_rate"] == pytest.approx(4 / 5) and truth["tolerance_rate"] == pytest.approx(4 / 5)
    assert truth["coverage"] == 1.0 and truth["truth_size"] == 3
    assert tpe["success_rate"] == pytest.approx(3 / 4) and tpe["distinct_successes"] == 2
    assert tpe["unique_success_rate"] == pytest.approx(2 / 3) and tpe["novel_success_rate"] == 1.0
    assert tpe["coverage"] == pytest.approx(1 / 3)  # KZnF3 of {KZnF3, NaGeF3, BaSnO3}; KCdCl2F is not enumerated
    assert tpe["wall_s"] == 4.0 and tpe["search_s"] == 2.0
    assert tpe["distinct_per_s"] == pytest.approx(0.5) and tpe["distinct_per_search_s"] == pytest.approx(1.0)


def test_without_an_enumerate_run_there_is_no_coverage(runs: list[Path]) -> None:
    (row,) = comparison_rows([load_run(runs[1])])
    assert "coverage" not in row


def test_compare_writes_markdown_and_csv(runs: list[Path], tmp_path: Path) -> None:
    rows, md, table = compare_runs(runs, tmp_path / "out" / "cmp_2.5")
    assert md.name == "cmp_2.5.md" and table.name == "cmp_2.5.csv"
    text = md.read_text()
    assert text == markdown_table(rows) and text.count("\n") == 4 and "| enumerate | 40 |" in text
    with table.open(newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [r["method"] for r in written] == ["enumerate", "tpe"] and written[1]["distinct_successes"] == "2"


def test_not_a_run_directory_is_one_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="has no run.json"):
        load_run(tmp_path / "empty")


def test_a_truncated_or_empty_result_csv_is_one_config_error(runs: list[Path]) -> None:
    csv_path = runs[1] / "result.csv"
    csv_path.write_text(csv_path.read_text()[:-12])  # cut inside the last row
    with pytest.raises(ConfigError, match=r"line 5 has [0-6] cells, the header 7 \(truncated or edited\?\)"):
        load_run(runs[1])
    csv_path.write_text("")
    with pytest.raises(ConfigError, match="result.csv is empty"):
        load_run(runs[1])


def test_the_judge_agreement_on_successes_is_in_the_table(tmp_path: Path) -> None:
    path = write_run(tmp_path / "judged", "random", 10, [("KZnF3", True, True, True), ("NaGeF3", True, True, True)], 2.0)
    with (path / "result.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row, judge_ok in zip(rows, ("True", "False"), strict=True):
        row.update(band_gap="2.5", band_gap_judge="2.4", band_gap_judge_ok=judge_ok)
    with (path / "result.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (row,) = comparison_rows([load_run(path)])
    assert row["band_gap_judge_agreement"] == pytest.approx(0.5)  # 1 of the 2 successes
    assert "band_gap_judge_rate" not in row  # reported, not a criterion
