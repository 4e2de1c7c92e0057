"""The composition polish inside a run: recorded in run.json, timed per batch, off with physics none, resumable."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

import smoacs.runner
from smoacs.config import RunConfig
from smoacs.configfile import load_config
from smoacs.errors import ConfigError
from smoacs.options import RunOptions, options_from_mapping, run_config
from smoacs.physics.settings import PhysicsSettings
from smoacs.physics.toy import LennardJonesPotential
from smoacs.presets import build_config
from smoacs.runner import run


def _config(out: Path, rounds: int = 1, potential: str = "chgnet") -> RunConfig:
    config = build_config("perovskite-bandgap", 2.0, str(out))
    optimizer = replace(config.optimizer, steps=6, copy_mutate_steps=(3,), rebuild_every=3)
    physics = PhysicsSettings(potential=potential, polish_rounds=rounds, polish_steps=2, max_steps=15)
    return config.with_overrides(candidates=4, batch_size=2, seed=0, device="cpu", optimizer=optimizer, physics=physics,
                                 judge={})  # fmt: skip


@pytest.fixture
def toy_potential(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's potential is a Lennard-Jones toy (fast; no CHGNet)."""
    monkeypatch.setattr(smoacs.runner, "load_potential", lambda name, device: LennardJonesPotential(2.6, 0.05))


def test_the_polish_is_recorded_and_timed(tmp_path: Path, toy_potential: None) -> None:  # noqa: ARG001
    run(_config(tmp_path / "run", rounds=2), progress=False)
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["config"]["physics"]["polish_rounds"] == 2 and meta["config"]["physics"]["polish_steps"] == 2
    for batch in meta["timings"]["batches"]:
        assert batch["polish_relax_s"] > 0 and batch["polish_optimize_s"] > 0
        assert 0 <= batch["polish_changed"] <= 2 and 0 <= batch["polished"] <= 4  # 2 rounds × 2 candidates


def test_the_polish_shows_in_the_progress(tmp_path: Path, toy_potential: None, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ARG001
    run(_config(tmp_path / "run", rounds=2), progress=True)
    lines = capsys.readouterr().out.splitlines()
    polishing = [line for line in lines if "polishing" in line]
    assert [line.split(": done in ")[0] for line in polishing] == [
        f"batch {i}/2: polishing (2 rounds of relaxation + composition steps)" for i in (1, 2)
    ]


def test_no_polish_without_physics_or_with_zero_rounds(tmp_path: Path, toy_potential: None) -> None:  # noqa: ARG001
    for name, config in (("none", _config(tmp_path / "a", potential="none")), ("zero", _config(tmp_path / "b", rounds=0))):
        run(config, progress=False)
        meta = json.loads((Path(config.out) / "run.json").read_text())
        assert all("polish_relax_s" not in b for b in meta["timings"]["batches"]), name


def test_a_polished_run_resumes_to_the_same_files(tmp_path: Path, toy_potential: None, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ARG001
    run(_config(tmp_path / "full"), progress=False)
    config = _config(tmp_path / "part")
    original, calls = smoacs.runner.evaluate_design, []

    def interrupted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(smoacs.runner, "evaluate_design", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run(config, progress=False)
    run(config, progress=False, resume=True)
    for name in ("result.csv", "result_summary.csv"):
        assert (tmp_path / "full" / name).read_bytes() == (tmp_path / "part" / name).read_bytes(), name


def test_polish_rounds_from_the_cli_options_and_files(tmp_path: Path) -> None:
    options = RunOptions(preset="perovskite-bandgap", target=2.5, polish_rounds=0, physics="chgnet")
    assert run_config(options).physics.polish_rounds == 0
    assert options_from_mapping({"polish-rounds": 3}).polish_rounds == 3
    with pytest.raises(ConfigError, match="expected an integer"):
        options_from_mapping({"polish_rounds": "two"})
    with pytest.raises(ConfigError, match="polish_rounds must be ≥ 0"):
        run_config(replace(options, polish_rounds=-2))
    data = _config(tmp_path / "x").to_dict()
    data["physics"] = {"potential": "chgnet", "polish_rounds": 3, "polish_steps": 5}
    yaml_path = tmp_path / "c.yaml"
    yaml_path.write_text(yaml.safe_dump(data))
    toml_path = tmp_path / "c.toml"
    toml_path.write_text(TOML + "\n[physics]\npolish_rounds = 3\npolish_steps = 5\n")
    for path in (yaml_path, toml_path):
        loaded = load_config(str(path))
        assert (loaded.physics.polish_rounds, loaded.physics.polish_steps) == (3, 5), path
    data["physics"]["polish_steps"] = 0
    with pytest.raises(ConfigError, match="polish_steps must be ≥ 1"):
        RunConfig.from_dict(data)


def test_polish_replace_from_the_cli_and_files(tmp_path: Path) -> None:
    from smoacs.cli import build_parser

    assert RunConfig.from_dict(_config(tmp_path / "x").to_dict()).physics.polish_replace  # the default
    options = RunOptions(preset="perovskite-bandgap", target=2.5, polish_replace=False)
    assert not run_config(options).physics.polish_replace
    assert options_from_mapping({"polish-replace": False}).polish_replace is False
    with pytest.raises(ConfigError, match="expected true or false"):
        options_from_mapping({"polish_replace": "no"})
    parser = build_parser()
    for flags, expected in ((["--no-polish-replace"], False), (["--polish-replace"], True), ([], None)):
        args = parser.parse_args(["run", "--preset", "perovskite-bandgap", *flags])
        assert RunOptions.from_namespace(args).polish_replace is expected, flags
    data = _config(tmp_path / "y").to_dict()
    data["physics"]["polish_replace"] = False
    assert not RunConfig.from_dict(data).physics.polish_replace


TOML = """
preset = "toml-task"
out = "runs/x"

[predictors]
band_gap = "cgcnn-band-gap"

[[objectives]]
kind = "window"
property = "band_gap"
target = 2.0
"""


def test_the_cli_flag_sets_the_rounds(capsys: pytest.CaptureFixture[str]) -> None:
    from smoacs.cli import main

    assert main(["run", "--preset", "perovskite-bandgap", "--target", "2.5", "--polish-rounds", "0", "--dump-config"]) == 0
    assert "polish_rounds: 0" in capsys.readouterr().out
    assert main(["run", "--preset", "perovskite-bandgap", "--target", "2.5", "--polish-rounds", "-1", "--dump-config"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "polish_rounds must be ≥ 0" in err[0]


@pytest.mark.parametrize(
    ("key", "old", "new"),
    [("polish_rounds", 0, 2), ("polish_replace", False, True)],
    ids=["before-the-polish", "before-the-replacement"],
)
def test_a_physics_run_from_before_a_polish_setting_resumes_only_as_it_ran(
    tmp_path: Path, toy_potential: None, key: str, old: object, new: object  # noqa: ARG001
) -> None:
    """A run.json without a later ``physics`` key ran as its absence meant: resuming it under the new default is refused."""
    config = _config(tmp_path / "old", rounds=1)
    config = replace(config, physics=replace(config.physics, **{key: old}))
    run(config, progress=False)
    path = tmp_path / "old" / "run.json"
    meta = json.loads(path.read_text())
    del meta["config"]["physics"][key]  # written before the setting existed
    path.write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=rf"physics\.{key} differs \(run.json: {old}, requested: {new}\)"):
        run(replace(config, physics=replace(config.physics, **{key: new})), resume=True, progress=False)
    run(config, resume=True, progress=False)  # the same run as it was written resumes


def test_the_set_up_shows_in_the_progress(tmp_path: Path, toy_potential: None, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ARG001
    run(_config(tmp_path / "a", potential="none"), progress=True)
    screened = replace(_config(tmp_path / "b"), physics=replace(_config(tmp_path / "b").physics, screen=0.5))
    run(screened, progress=True)
    setup = [line.split(": done in ")[0] for line in capsys.readouterr().out.splitlines() if line.startswith("setting up")]
    assert setup == [
        "setting up: loading models and reference sets",
        "setting up: loading models and reference sets, screening single-anion starts at equilibrium (physics.screen)",
    ]
