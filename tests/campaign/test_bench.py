"""smoacs bench: the protocols' cells, RESULTS.md's tables (mean ± sd over seeds), and a --quick slice end to end."""

from __future__ import annotations

import statistics
from pathlib import Path

import pandas as pd
import pytest

from smoacs.campaign.bench import PROTOCOLS, QUICK, available_methods, bench_cells, results_markdown, run_bench
from smoacs.errors import ConfigError
from smoacs.search import METHODS


def test_methods_are_every_registered_search_method() -> None:
    methods = available_methods()
    assert sorted(methods) == sorted(METHODS) and methods[0] == "gradient"


def test_cells_cover_every_protocol_target_method_and_seed(tmp_path: Path) -> None:
    cells, notes = bench_cells(tmp_path, quick=True, methods=["gradient"], seeds=3)
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
        assert cell.config.optimizer.steps == (10 if cell.overrides["table"] == "T5" else QUICK["steps"])
    full, _ = bench_cells(tmp_path, quick=False, methods=["gradient"], seeds=1, only=["t4"])
    assert [c.config.candidates for c in full] == [256, 256] and full[0].config.physics.potential == "chgnet"


def test_table6_runs_with_a_given_ehull_model_and_unknown_tables_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cell target-4_method-gradient_seed-0: unknown predictor 'no-such-model'"):
        bench_cells(tmp_path, quick=True, methods=["gradient"], seeds=1, only=["T6"], ehull_model="no-such-model")
    with pytest.raises(ConfigError, match="--only T9: no such table"):
        bench_cells(tmp_path, quick=True, methods=["gradient"], seeds=1, only=["T9"])


def test_results_tables_give_mean_and_sd_over_seeds() -> None:
    rates = [0.25, 0.5, 0.625]
    frame = pd.DataFrame({
        "name": [f"T4/s{i}" for i in range(3)], "table": "T4", "preset": "perovskite-bandgap", "target": 2.5,
        "method": "gradient", "seed": [0, 1, 2], "status": "finished", "attempts": 1, "wall_s": 1.0, "run_s": 2.0,
        "host": "h", "error": "", "success_rate": rates, "band_gap_rate": [1.0, 1.0, 1.0],
        "unique_success_rate": ["", "", ""],
    })  # fmt: skip
    text = results_markdown(frame, True, ["gradient"], 3, [], ["- machine: test"], "smoacs bench --quick")
    mean, sd = statistics.mean(rates), statistics.stdev(rates)
    assert f"| 2.5 | gradient | 3/3 | **{mean:.2f} ± {sd:.2f}** | 1.00 ± 0.00 | 2 ± 0 | 0.39 ± 0.01 |" in text
    assert "unique" not in text.split("## T4")[1]  # nothing measured: no column
    assert "smoacs bench --quick" in text and "- machine: test" in text and "--quick figures" in text


@pytest.mark.slow
def test_quick_bench_slice_writes_results(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    result = run_bench(quick=True, out=str(tmp_path / "bench"), results=str(results), methods=["gradient"], seeds=2,
                       backend="local", workers=1, only=["T4"], echo=lambda line: None)  # fmt: skip
    assert [o.status for o in result.outcomes] == ["finished"] * 4
    text = results.read_text()
    assert "## T4" in text and "| 0.5 | gradient | 2/2 |" in text and "band_gap judge agrees" in text
    assert (tmp_path / "bench" / "campaign.csv").is_file()
