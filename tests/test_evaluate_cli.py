"""`smoacs evaluate RUN_DIR`: re-evaluation from a run's files reproduces its flags; report.md; errors."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from smoacs.cli import main
from smoacs.presets import build_config
from smoacs.runner import RunResult, run
from smoacs.physics.settings import PhysicsSettings

FLAGS = ("success", "band_gap_ok", "formation_energy_ok", "tolerance_ok", "min_distance_ok", "neutral_ok",
         "perovskite_ok", "band_gap_judge_ok", "formation_energy_judge_ok", "unique", "duplicate_of", "novel",
         "oxidation_states", "formula", "tolerance")  # fmt: skip
RATES = ("n_candidates", "n_success", "success_rate", "band_gap_rate", "formation_energy_rate", "tolerance_rate",
         "min_distance_rate", "neutral_rate", "perovskite_rate", "distinct_success_formulas", "n_unique_success",
         "unique_success_rate", "n_novel_success", "novel_success_rate", "n_quarantined",
         "band_gap_judge_agreement", "formation_energy_judge_agreement")  # fmt: skip


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    config = build_config("perovskite-bandgap", 2.0, str(tmp_path_factory.mktemp("evaluate") / "run"))
    optimizer = replace(config.optimizer, steps=20, copy_mutate_steps=(10,), rebuild_every=5)
    config = config.with_overrides(
        candidates=8, batch_size=4, seed=0, device="cpu", optimizer=optimizer, physics=PhysicsSettings(potential="none")
    )
    result = run(config, progress=False)
    assert result.successes, "the fixture run needs at least one success"
    return result


def test_evaluate_reproduces_the_run(tiny_run: RunResult, capsys: pytest.CaptureFixture[str]) -> None:
    out = tiny_run.out_dir
    assert main(["evaluate", str(out), "--device", "cpu"]) == 0
    assert "success_rate" in capsys.readouterr().out
    original, again = _read(out / "result.csv"), _read(out / "evaluation.csv")
    assert list(original[0]) == list(again[0])
    assert [[r[k] for k in FLAGS] for r in again] == [[r[k] for k in FLAGS] for r in original]
    for a, b in zip(original, again, strict=True):
        for key in ("band_gap", "formation_energy", "min_distance", "band_gap_judge", "density"):
            assert float(b[key]) == pytest.approx(float(a[key]), abs=1e-5)
    summary, summary_again = _read(out / "result_summary.csv")[0], _read(out / "evaluation_summary.csv")[0]
    assert {k: summary[k] for k in RATES} == {k: summary_again[k] for k in RATES}


def test_report_lists_successes(tiny_run: RunResult) -> None:
    report = (tiny_run.out_dir / "report.md").read_text()
    assert "## Summary" in report and "A: band_gap window" in report and "E: structure preserved" in report
    assert "band_gap = 2 ± 0.2" in report
    table = report.split("## Top candidates")[1]
    for row in tiny_run.successes:
        assert f"| {row['id']} | {row['formula']} | yes |" in table
        assert f"(structures/{row['id']}.cif)" in table
    first_failure = min((table.find(f"| {r['id']} |") for r in tiny_run.rows if not r["success"]), default=len(table))
    assert all(table.find(f"| {r['id']} |") < first_failure for r in tiny_run.successes)  # successes first


def test_evaluate_with_planted_reference(tiny_run: RunResult, tmp_path: Path) -> None:
    success = tiny_run.successes[0]
    references = tmp_path / "refs"
    references.mkdir()
    shutil.copy(tiny_run.out_dir / success["cif"], references / "planted.cif")
    from smoacs.evaluate.rerun import evaluate_run

    result = evaluate_run(tiny_run.out_dir, references=[str(references)], device="cpu", write=False)
    by_id = {row["id"]: row for row in result.rows}
    assert by_id[success["id"]]["novel"] is False
    assert by_id[success["id"]]["reference_id"] == "refs:planted.cif"
    assert by_id[success["id"]]["reference_match"] == "structure"
    n = result.summary["n_success"]
    assert result.summary["novel_success_rate"] == pytest.approx(sum(r["novel"] is True for r in result.rows) / n)
    assert result.summary["novel_success_rate"] < 1.0


def test_bad_run_dir_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("smoacs: error:") and err.count("\n") == 1 and "does not exist" in err
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "run.json").write_text("{}")
    assert main(["evaluate", str(tmp_path / "half")]) == 2
    err = capsys.readouterr().err
    assert "not a smoacs run directory" in err and err.count("\n") == 1
    assert main(["evaluate", str(tmp_path / "missing"), "--reference", "perov7"]) == 2
    capsys.readouterr()
    (tmp_path / "result.csv").write_text("id\n")
    assert main(["evaluate", str(tmp_path / "result.csv")]) == 2
    err = capsys.readouterr().err
    assert "is a file; give a run directory" in err and err.count("\n") == 1


def test_evaluate_with_relaxation(tiny_run: RunResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import smoacs.evaluate.relaxation as relaxation
    from smoacs.physics.toy import LennardJonesPotential

    run_dir = tmp_path / "copy"
    shutil.copytree(tiny_run.out_dir, run_dir)
    # A soft pair potential stands in for CHGNet (fast); the stage, files and verdicts are what is tested.
    monkeypatch.setattr(relaxation, "load_potential", lambda name, device: LennardJonesPotential(2.0, 0.05))
    assert main(["relax", str(run_dir), "--device", "cpu"]) == 0
    rows = _read(run_dir / "evaluation.csv")
    assert len(rows) == len(tiny_run.rows)
    for row in rows:
        assert row["relax_status"] in ("converged", "step_limit", "failed")
        assert row["cif"] == f"relaxed/{row['id']}.cif" and (run_dir / row["cif"]).is_file()
        assert row["design_cif"] == f"structures/{row['id']}.cif"
        assert row["unrelaxed_success"] in ("True", "False")
        if row["success"] == "True":  # the relaxed verdict includes a converged relaxation
            assert row["relax_status"] == "converged" and row["converged_ok"] == "True"
    summary = _read(run_dir / "evaluation_summary.csv")[0]
    assert "unrelaxed_success_rate" in summary and "median_abs_volume_change" in summary


def test_another_runs_result_csv_is_a_reference(tiny_run: RunResult, capsys: pytest.CaptureFixture[str]) -> None:
    from smoacs.evaluate.rerun import evaluate_run

    result = evaluate_run(tiny_run.out_dir, references=[str(tiny_run.out_dir / "result.csv")], device="cpu", write=False)
    successes = [row for row in result.rows if row["success"]]
    assert successes and all(row["novel"] is False for row in successes)  # each matches its own CIF
    assert all(row["reference_id"].startswith("result.csv:c") for row in successes)


def test_a_reference_csv_with_bad_paths_is_one_line(tiny_run: RunResult, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    bad = tmp_path / "refs.csv"
    bad.write_text("id,cif\nx,structures/missing.cif\n")
    assert main(["evaluate", str(tiny_run.out_dir), "--reference", str(bad), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"smoacs: error: reference file {bad} row 1: the cif column holds")


def test_api_successes_have_absolute_paths(tiny_run: RunResult) -> None:
    for row in tiny_run.successes:
        assert isinstance(row["cif"], Path) and row["cif"].is_absolute() and row["cif"].is_file()
        assert row["poscar"].is_absolute() and row["poscar"].is_file()
    assert all(isinstance(row["cif"], str) and not Path(row["cif"]).is_absolute() for row in tiny_run.rows)


def test_evaluate_sets_the_runs_threads_and_allocator_as_run_does(tiny_run: RunResult,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    import smoacs.evaluate.rerun as rerun
    import smoacs.runtime as runtime

    calls: list[object] = []
    monkeypatch.setattr(runtime, "set_threads", lambda threads: calls.append(("threads", threads)) or 1)
    monkeypatch.setattr(runtime, "retain_freed_memory", lambda: calls.append("retain") or 0)
    rerun.evaluate_run(tiny_run.out_dir, device="cpu", write=False)
    threads = json.loads((tiny_run.out_dir / "run.json").read_text())["config"]["threads"]
    assert calls == [("threads", threads), "retain"]
