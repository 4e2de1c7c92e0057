"""smoacs bench: the protocols' cells, RESULTS.md's tables (mean ± sd over seeds), and a --quick slice end to end."""

from __future__ import annotations

import statistics
from pathlib import Path

import pandas as pd
import pytest

from smoacs.campaign.bench import PROTOCOLS, QUICK, SIZES, available_methods, bench_cells, results_markdown, run_bench
from smoacs.campaign.executor import estimated_cost, longest_first
from smoacs.errors import ConfigError
from smoacs.search import METHODS


def test_methods_are_every_registered_search_method() -> None:
    methods = available_methods()
    assert sorted(methods) == sorted(METHODS) and methods[0] == "gradient"


def test_cells_cover_every_protocol_target_method_and_seed(tmp_path: Path) -> None:
    cells, notes = bench_cells(tmp_path, "medium", methods=["gradient"], seeds=3)
    runnable = [p for p in PROTOCOLS if p.needs is None]
    assert len(cells) == 3 * sum(len(p.targets) for p in runnable)
    assert notes == ["T6 (perovskite-bandgap-ehull) skipped: it needs an E_hull model (--ehull-model SPEC)"]
    assert len({c.name for c in cells}) == len(cells) and len({c.config.out for c in cells}) == len(cells)
    first = cells[0]
    assert first.name == "T2-superconductor-tc/target-3_method-gradient_seed-0"
    assert first.config.out == str(tmp_path / first.name)
    assert first.overrides == {"table": "T2", "preset": "superconductor-tc", "target": 3.0, "method": "gradient", "seed": 0}
    for cell in cells:
        assert cell.config.physics.potential == "none" and cell.config.threads == 1
        assert cell.config.optimizer.steps == (20 if cell.overrides["table"] == "T5" else SIZES["medium"]["steps"])
    full, _ = bench_cells(tmp_path, "full", methods=["gradient"], seeds=1, only=["t4"])
    assert [c.config.candidates for c in full] == [256, 256] and full[0].config.physics.potential == "chgnet"


def test_quick_runs_one_target_per_table_and_baselines_at_the_gradients_budget(tmp_path: Path) -> None:
    cells, notes = bench_cells(tmp_path, "quick", methods=["gradient", "random", "enumerate", "tpe"], seeds=2)
    assert {c.overrides["table"]: c.overrides["target"] for c in cells} == {
        p.table: p.quick_target for p in PROTOCOLS if p.needs is None}  # fmt: skip
    by_method = {m: [c for c in cells if c.overrides["method"] == m] for m in ("gradient", "random", "enumerate", "tpe")}
    assert all(c.config.search.budget == c.config.optimizer.steps for c in by_method["random"] + by_method["tpe"])
    assert all(c.config.search.budget is None for c in by_method["gradient"]) and not by_method["enumerate"]
    assert "T4: enumerate not run: run at the full size only" in "\n".join(notes)
    assert "T5" not in {c.overrides["table"] for c in by_method["tpe"]}
    assert "T5: tpe not run: one Optuna study per candidate over ~270 conditional parameters" in notes
    assert len(cells) == 5 * 2 * 2 + 4 * 2  # gradient and random everywhere, tpe on 4 tables
    t4 = [c.overrides["method"] for c in cells if c.overrides["table"] == "T4"]
    assert t4 == ["gradient", "gradient", "random", "random", "tpe", "tpe"]  # grid order per table
    full, _ = bench_cells(tmp_path, "full", methods=["enumerate"], seeds=3, only=["T2", "T4", "T7"])
    assert {c.overrides["table"] for c in full} == {"T4", "T7"}  # the enumerable spaces only
    assert {c.overrides["seed"] for c in full} == {0} and len(full) == 5  # exhaustive: once per target
    with pytest.raises(ConfigError, match="unknown bench size 'huge'"):
        bench_cells(tmp_path, "huge", methods=["gradient"], seeds=1)  # type: ignore[arg-type]


def test_longest_runs_are_started_first(tmp_path: Path) -> None:
    cells, _ = bench_cells(tmp_path, "quick", methods=["gradient", "tpe"], seeds=1, only=["T4", "T5"])
    order = longest_first(cells)
    costs = [estimated_cost(c.config) for c in order]
    assert costs == sorted(costs, reverse=True) and sorted(c.name for c in order) == sorted(c.name for c in cells)
    assert [(c.overrides["table"], c.overrides["method"]) for c in order] == [
        ("T5", "gradient"), ("T4", "tpe"), ("T4", "gradient")]  # 135-atom cells, then Optuna's sampler time  # fmt: skip
    gradient = {c.overrides["table"]: estimated_cost(c.config) for c in cells if c.overrides["method"] == "gradient"}
    assert gradient["T5"] == 4 * 135 * 10 and gradient["T4"] == QUICK["candidates"] * 5 * QUICK["steps"]
    full, _ = bench_cells(tmp_path, "full", methods=["enumerate"], seeds=1, only=["T4"])
    assert estimated_cost(full[0].config) > estimated_cost(cells[0].config)  # 1,800 compositions, CHGNet


def test_table6_runs_with_a_given_ehull_model_and_unknown_tables_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cell target-4.5_method-gradient_seed-0: unknown predictor 'no-such-model'"):
        bench_cells(tmp_path, "quick", methods=["gradient"], seeds=1, only=["T6"], ehull_model="no-such-model")
    with pytest.raises(ConfigError, match="--only T9: no such table"):
        bench_cells(tmp_path, "quick", methods=["gradient"], seeds=1, only=["T9"])


def test_results_tables_give_mean_and_sd_over_seeds() -> None:
    rates = [0.25, 0.5, 0.625]
    frame = pd.DataFrame({
        "name": [f"T4/s{i}" for i in range(3)], "table": "T4", "preset": "perovskite-bandgap", "target": 2.5,
        "method": "gradient", "seed": [0, 1, 2], "status": "finished", "attempts": 1, "wall_s": 1.0, "run_s": 2.0,
        "host": "h", "error": "", "success_rate": rates, "band_gap_rate": [1.0, 1.0, 1.0],
        "unique_success_rate": ["", "", ""],
    })  # fmt: skip
    text = results_markdown(frame, "quick", ["gradient"], 3, [], ["- machine: test"], "smoacs bench --quick")
    mean, sd = statistics.mean(rates), statistics.stdev(rates)
    assert f"| 2.5 | gradient | 3/3 | **{mean:.2f} ± {sd:.2f}** | 1.00 ± 0.00 | 2 ± 0 | 0.39 ± 0.01 |" in text
    assert "unique" not in text.split("## T4")[1]  # nothing measured: no column
    assert "smoacs bench --quick" in text and "- machine: test" in text and "--quick figures" in text


@pytest.mark.slow
def test_quick_bench_slice_writes_results(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    result = run_bench(size="quick", out=str(tmp_path / "bench"), results=str(results), methods=["gradient"], seeds=2,
                       backend="local", workers=1, only=["T4"], echo=lambda line: None)  # fmt: skip
    assert [o.status for o in result.outcomes] == ["finished"] * 2
    text = results.read_text()
    assert "## T4" in text and "| 2.5 | gradient | 2/2 |" in text and "- CPU time of the runs: " in text and "band_gap judge agrees" in text
    assert (tmp_path / "bench" / "campaign.csv").is_file()


def test_cli_quick_writes_its_own_results_file(monkeypatch: pytest.MonkeyPatch) -> None:
    from smoacs.cli import main

    calls: list[dict] = []

    class Done:
        failed: list = []

    def fake(**kwargs: object) -> Done:
        calls.append(kwargs)
        return Done()

    monkeypatch.setattr("smoacs.campaign.bench.run_bench", fake)
    assert main(["bench", "--quick"]) == 0 and main(["bench", "--size", "medium", "--only", "T4"]) == 0
    assert [(c["size"], c["results"]) for c in calls] == [
        ("quick", "benchmarks/RESULTS_quick.md"), ("medium", "benchmarks/RESULTS.md")]  # fmt: skip
    assert calls[1]["only"] == ["T4"] and calls[1]["seeds"] == 3
