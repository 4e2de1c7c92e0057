"""Resuming an interrupted run (``run(config, resume=True)``, ``smoacs run --resume``) gives the files of an
uninterrupted run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import smoacs.evaluate.matching
import smoacs.runner
from smoacs.cli import main
from smoacs.config import RunConfig
from smoacs.errors import ConfigError
from smoacs.io.rundir import RunDirectory
from smoacs.presets import build_config
from smoacs.runner import RunResult, run
from smoacs.physics.settings import PhysicsSettings

N_CANDIDATES, BATCH_SIZE, STEPS = 6, 2, 12
# A seed whose reference run has a success in the first two mini-batches (c00002) and one later (c00004); which
# candidates succeed after 12 steps moves with float-rounding changes in the predictors (benchmarks/README.md).
SEED = 6


def _config(out: Path, seed: int = SEED) -> RunConfig:
    config = build_config("perovskite-bandgap", 2.0, str(out))
    optimizer = replace(config.optimizer, steps=STEPS, copy_mutate_steps=(6,), rebuild_every=4)
    return config.with_overrides(candidates=N_CANDIDATES, batch_size=BATCH_SIZE, seed=seed, device="cpu",
                                 optimizer=optimizer, physics=PhysicsSettings(potential="none"))  # fmt: skip


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return run(_config(tmp_path_factory.mktemp("resume") / "full"), progress=False)


def _interrupt_at(monkeypatch: pytest.MonkeyPatch, target: object, name: str, call: int) -> None:
    original = getattr(target, name)
    calls = []

    def wrapped(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, wrapped)


def _assert_same(a: Path, b: Path) -> None:
    for name in ("result.csv", "result_summary.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for folder in ("structures", "poscar"):
        names = sorted(p.name for p in (a / folder).iterdir())
        assert names == sorted(p.name for p in (b / folder).iterdir())
        for file in names:
            assert (a / folder / file).read_bytes() == (b / folder / file).read_bytes(), file
    with np.load(a / "result.npz") as x, np.load(b / "result.npz") as y:
        assert sorted(x.files) == sorted(y.files)
        for key in x.files:
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)


@pytest.mark.parametrize(
    ("where", "call"),
    [("evaluate", 3), ("npz", 3), ("evaluate", 2), ("evaluate", 1)],
    ids=["after-batch-2", "between-csv-and-npz", "after-batch-1", "before-any-batch"],
)
def test_resume_matches_uninterrupted(
    reference: RunResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, call: int
) -> None:
    config = _config(tmp_path / "run")
    with monkeypatch.context() as patch:
        if where == "evaluate":
            _interrupt_at(patch, smoacs.runner, "evaluate_design", call)
        else:
            _interrupt_at(patch, RunDirectory, "write_npz", call)
        with pytest.raises(KeyboardInterrupt):
            run(config, progress=False)
    stopped = json.loads((tmp_path / "run" / "run.json").read_text())
    assert stopped["status"] == "interrupted" and "KeyboardInterrupt" in stopped["reason"]
    computed = []
    original = smoacs.runner.evaluate_design
    monkeypatch.setattr(smoacs.runner, "evaluate_design", lambda *a, **k: computed.append(a[5]) or original(*a, **k))
    seen = []  # the cross-batch duplicate state each resumed batch starts from
    annotate = smoacs.evaluate.matching.annotate_matching
    monkeypatch.setattr(smoacs.evaluate.matching, "annotate_matching",
                        lambda r, s, ref, d, f: seen.append((d.n_added, list(f))) or annotate(r, s, ref, d, f))  # fmt: skip
    resumed = run(config, resume=True, progress=False)
    kept = call - 1
    earlier = [r["id"] for r in reference.rows[: kept * BATCH_SIZE] if r["success"]]
    assert seen[0] == (len(earlier), earlier)
    if kept == 2:
        assert earlier  # the reference run has a success in the kept batches (c00002)
    assert computed == [[f"c{BATCH_SIZE * b + i:05d}" for i in range(BATCH_SIZE)] for b in range(kept, 3)]
    _assert_same(reference.out_dir, resumed.out_dir)
    assert resumed.summary == reference.summary
    assert [r["id"] for r in resumed.rows] == [r["id"] for r in reference.rows]
    assert [r["unique"] for r in resumed.rows] == [r["unique"] for r in reference.rows]
    assert [r["duplicate_of"] for r in resumed.rows] == [r["duplicate_of"] for r in reference.rows]
    meta = json.loads((resumed.out_dir / "run.json").read_text())
    assert meta["status"] == "finished" and meta["resumed"]["finished_batches"] == kept


def test_resume_of_a_finished_run_recomputes_nothing(reference: RunResult, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    config = _config(tmp_path / "done")
    run(config, progress=False)
    monkeypatch.setattr(smoacs.runner, "evaluate_design", lambda *a, **k: pytest.fail("recomputed a batch"))
    resumed = run(config, resume=True, progress=False)
    _assert_same(reference.out_dir, resumed.out_dir)


def test_resume_with_another_config_is_refused(reference: RunResult) -> None:
    config = _config(reference.out_dir, seed=1)
    with pytest.raises(ConfigError, match="config key seed differs") as info:
        run(config, resume=True, progress=False)
    assert "\n" not in str(info.value)
    steps = config.with_overrides(seed=SEED, optimizer=replace(config.optimizer, steps=STEPS + 1))
    with pytest.raises(ConfigError, match=r"optimizer\.steps differs \(run.json: 12, requested: 13\)"):
        run(steps, resume=True, progress=False)


def test_resume_of_a_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        run(_config(tmp_path / "nope"), resume=True, progress=False)
    assert main(["run", "--resume", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot resume" in err and "does not exist" in err


def test_cli_resume(reference: RunResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = tmp_path / "cli"
    args = ["run", "--preset", "perovskite-bandgap", "--target", "2", "--candidates", str(N_CANDIDATES),
            "--batch-size", str(BATCH_SIZE), "--steps", "3", "--device", "cpu", "--no-judge", "--no-progress",
            "--physics", "none", "--out", str(out)]  # fmt: skip
    with monkeypatch.context() as patch:
        _interrupt_at(patch, smoacs.runner, "evaluate_design", 3)
        assert main(args) == 130
    assert main(["run", "--resume", str(out), "--no-progress"]) == 0  # config from the directory's run.json
    assert f"({N_CANDIDATES} candidates)" in capsys.readouterr().out
    assert main(["run", "--resume", str(out), "--steps", "4"]) == 2
    assert "optimizer.steps differs" in capsys.readouterr().err
    assert main([*args[:-2], "--resume", str(out), "--no-progress"]) == 0  # the same preset and flags: accepted


def test_resume_of_a_finished_run_keeps_run_json(tmp_path: Path) -> None:
    config = _config(tmp_path / "done")
    run(config, progress=False)
    before = (tmp_path / "done" / "run.json").read_bytes()
    resumed = run(config, resume=True, progress=False)
    assert (tmp_path / "done" / "run.json").read_bytes() == before  # timings and start time kept
    meta = json.loads(before)
    assert resumed.summary == meta["summary"] and len(resumed.rows) == N_CANDIDATES


def test_resume_keeps_the_timings_of_the_kept_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path / "part")
    with monkeypatch.context() as patch:
        _interrupt_at(patch, smoacs.runner, "evaluate_design", 3)
        with pytest.raises(KeyboardInterrupt):
            run(config, progress=False)
    first = json.loads((tmp_path / "part" / "run.json").read_text())
    run(config, resume=True, progress=False)
    meta = json.loads((tmp_path / "part" / "run.json").read_text())
    assert meta["resumed"] == {"finished_batches": 2, "previous_started": first["started"]}
    assert [t["batch"] for t in meta["timings"]["batches"]] == [0, 1, 2]


def test_a_run_that_fails_outside_a_batch_records_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("disk full")

    monkeypatch.setattr(smoacs.runner, "finish_run", broken)
    with pytest.raises(RuntimeError):
        run(_config(tmp_path / "bad"), progress=False)
    meta = json.loads((tmp_path / "bad" / "run.json").read_text())
    assert meta["status"] == "failed" and meta["reason"] == "RuntimeError: disk full"


def test_resume_refuses_another_batch_size(reference: RunResult) -> None:
    # results depend on the batch size (copy-and-mutate acts within a mini-batch), so it is part of the check
    with pytest.raises(ConfigError, match=r"config key batch_size differs \(run.json: 2, requested: 3\)"):
        run(_config(reference.out_dir).with_overrides(batch_size=3), resume=True, progress=False)


def test_cli_interrupt_names_the_run_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    _interrupt_at(monkeypatch, smoacs.runner, "evaluate_design", 1)
    args = ["run", "--preset", "perovskite-bandgap", "--candidates", "2", "--steps", "1", "--device", "cpu",
            "--no-judge", "--no-progress", "--physics", "none"]  # fmt: skip
    assert main(args) == 130
    err = capsys.readouterr().err
    assert "smoacs run --resume runs/perovskite-bandgap-2.5-s0`" in err and "RUN_DIR" not in err
    assert json.loads(Path("runs/perovskite-bandgap-2.5-s0/run.json").read_text())["status"] == "interrupted"


def test_resume_of_an_older_run_json_without_new_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run.json written before a setting existed resumes: the missing setting takes its default."""
    config = _config(tmp_path / "old")
    run(config, progress=False)
    path = tmp_path / "old" / "run.json"
    meta = json.loads(path.read_text())
    del meta["config"]["threads"]  # added after this run was written
    path.write_text(json.dumps(meta))
    monkeypatch.setattr(smoacs.runner, "evaluate_design", lambda *a, **k: pytest.fail("recomputed a batch"))
    run(config, resume=True, progress=False)  # no "config key threads differs"
    with pytest.raises(ConfigError, match="config key seed differs"):
        run(config.with_overrides(seed=5), resume=True, progress=False)


def test_resume_of_a_run_written_before_the_judge_rename_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path / "old")
    run(config, progress=False)
    path = tmp_path / "old" / "run.json"
    meta = json.loads(path.read_text())
    meta["config"]["oracles"] = meta["config"].pop("judge")
    path.write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="before oracles were renamed judges"):
        run(config, resume=True, progress=False)
