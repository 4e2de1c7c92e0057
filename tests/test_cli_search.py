"""`smoacs run --method … --budget …` and `smoacs compare`: every method writes the same run directory."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from smoacs.cli import main

TINY = ["--preset", "perovskite-bandgap", "--candidates", "3", "--device", "cpu", "--no-oracle", "--no-progress",
        "--physics", "none", "--threads", "1"]  # fmt: skip


def _dump(capsys: pytest.CaptureFixture[str], *flags: str) -> dict:
    assert main(["run", "--preset", "perovskite-bandgap", *flags, "--dump-config"]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def test_method_budget_and_anions_reach_the_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert _dump(capsys)["search"] == {"method": "gradient", "budget": None, "anions": "auto"}
    assert _dump(capsys, "--method", "tpe", "--budget", "50", "--anions", "single")["search"] == {
        "method": "tpe", "budget": 50, "anions": "single"}  # fmt: skip
    gradient = _dump(capsys, "--budget", "60")  # the gradient's budget is its step count
    assert gradient["search"]["budget"] == 60 and gradient["optimizer"]["steps"] == 60
    assert gradient["optimizer"]["copy_mutate_steps"] == [50]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--budget", "7", "--steps", "5"], "search.budget (7) must equal optimizer.steps (5)"),
        (["--method", "tpe", "--budget", "0"], "search.budget must be ≥ 1"),
        (["--anions", "single"], "search.anions applies to the baselines"),
    ],
)
def test_bad_search_settings_are_one_line(flags: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--preset", "perovskite-bandgap", *flags, "--dump-config"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]


def test_enumerating_a_supercell_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--preset", "perovskite3x3x3-bandgap", "--method", "enumerate", "--physics", "none",
                 "--no-progress", "--out", str(tmp_path / "e")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "enumerate: template perovskite3x3x3-0000 has" in err[0]


def test_a_baseline_run_is_evaluated_and_compared_like_a_gradient_run(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    runs = {"gradient": ["--steps", "2"], "random": ["--method", "random", "--budget", "2"]}
    for name, flags in runs.items():
        assert main(["run", *TINY, *flags, "--out", str(tmp_path / name)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    meta = json.loads((tmp_path / "random" / "run.json").read_text())
    assert meta["search"] == {"method": "random", "budget": 2, "budget_unit": "predictor evaluations per candidate",
                              "anions": "mixed"}  # fmt: skip
    assert meta["timings"]["batches"][0]["n_evaluations"] == 6
    for name in runs:
        with (tmp_path / name / "result.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == 3 and all((tmp_path / name / row["cif"]).is_file() for row in rows)
    assert main(["evaluate", str(tmp_path / "random"), "--device", "cpu"]) == 0
    assert (tmp_path / "random" / "evaluation.csv").is_file()
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "gradient"), str(tmp_path / "random"), "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert "| gradient | 2 | 6 | 3 |" in out and "| random | 2 | 6 | 3 |" in out
    assert (tmp_path / "cmp.md").is_file() and (tmp_path / "cmp.csv").read_text().count("\n") == 3


def test_baselines_refuse_sublattice_limits(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--preset", "perovskite3x3x3-alloy", "--method", "random", "--dump-config"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "does not support sublattice limits" in err[0]
