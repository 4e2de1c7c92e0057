"""Config files: round trips (dict, JSON, YAML, TOML), key-naming validation errors, `smoacs run FILE`, --dump-config."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from smoacs.cli import main
from smoacs.config import RunConfig
from smoacs.config import config_from_dict
from smoacs.configfile import dump_config, load_config
from smoacs.errors import ConfigError
from smoacs.objectives import Above, Below, Maximize, Minimize, Range, Window
from smoacs.presets import PRESETS, build_config

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_objective.yaml"

BASE: dict[str, Any] = {
    "out": "runs/x",
    "predictors": {"band_gap": "cgcnn-band-gap", "formation_energy": "cgcnn-formation-energy"},
    "objectives": [
        {"kind": "window", "property": "band_gap", "target": 2.0, "margin": 0.04, "eval_margin": 0.2},
        {"kind": "below", "property": "formation_energy", "threshold": -0.5},
        {"kind": "range", "property": "tolerance", "range": [0.8, 1.0], "margin": 0.02, "weight": 5.0},
    ],
}


def _write(tmp_path: Path, data: Any, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


# ---- round trips --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [name for name, preset in PRESETS.items() if not preset.user_models])
def test_every_preset_round_trips(name: str, tmp_path: Path) -> None:
    config = build_config(name, out="runs/rt")
    data = config.to_dict()
    assert RunConfig.from_dict(data) == config
    assert RunConfig.from_dict(json.loads(json.dumps(data))) == config  # run.json: tuples became lists
    assert load_config(_write(tmp_path, dump_config(config))) == config
    assert data == json.loads(json.dumps(data)), "to_dict is plain data (lists, not tuples)"


def test_round_trip_keeps_tuples_and_every_term_kind(tmp_path: Path) -> None:
    predictors = {"band_gap": "cgcnn-band-gap", "bulk_modulus": "cgcnn-bulk-modulus",
                  "formation_energy": "cgcnn-formation-energy", "efermi": "cgcnn-efermi"}  # fmt: skip
    base = build_config("perovskite-bandgap", out="runs/rt")
    config = base.with_overrides(
        preset="mine", predictors=predictors, judge={},
        objectives=(Window("band_gap", 1.8), Range("tolerance", 0.8, 1.0, 0.02, 5.0), Below("formation_energy", -0.5),
                    Above("min_distance", 0.5), Maximize("bulk_modulus", 100.0, 200.0, 0.01), Minimize("efermi")),
        optimizer=replace(base.optimizer, copy_mutate_steps=(5,), temperature_end=1e-5),
    )  # fmt: skip
    back = RunConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert back == config
    assert isinstance(back.optimizer.copy_mutate_steps, tuple) and isinstance(back.space.length_bounds, tuple)
    assert isinstance(back.objectives, tuple)
    dumped = dump_config(config)
    assert "{kind: maximize, property: bulk_modulus, threshold: 100.0, cap: 200.0, weight: 0.01}" in dumped
    assert load_config(_write(tmp_path, dumped)) == config
    assert load_config(_write(tmp_path, json.dumps(config.to_dict()), "c.json")) == config


def test_defaults_and_yaml_exponent_floats(tmp_path: Path) -> None:
    data = {k: v for k, v in BASE.items() if k != "out"}
    path = _write(tmp_path, yaml.safe_dump(data) + "optimizer: {steps: 7, temperature_end: 1e-4}\n", "my-task.yml")
    config = load_config(path)
    assert config.preset == "my-task" and config.out == "runs/my-task" and config.target == 2.0  # the window's
    assert config.optimizer.copy_mutate_steps == ()  # the default steps 50, 100, 150 lie beyond steps: 7
    assert config.optimizer.steps == 7 and config.optimizer.temperature_end == 1e-4
    assert config.candidates == 256 and config.judge == {}
    assert config.objectives[2] == Range("tolerance", 0.8, 1.0, margin=0.02, weight=5.0)


def test_toml_works(tmp_path: Path) -> None:
    toml = """
preset = "toml-task"
out = "runs/x"
candidates = 8
seed = 3

[predictors]
band_gap = "cgcnn-band-gap"
formation_energy = "cgcnn-formation-energy"

[[objectives]]
kind = "window"
property = "band_gap"
target = 2.0
margin = 0.04
eval_margin = 0.2

[[objectives]]
kind = "below"
property = "formation_energy"
threshold = -0.5

[[objectives]]
kind = "range"
property = "tolerance"
range = [0.8, 1.0]
margin = 0.02
weight = 5

[optimizer]
steps = 30
copy_mutate_steps = [10, 20]
"""
    config = load_config(_write(tmp_path, toml, "task.toml"))
    expected = load_config(_write(tmp_path, {**BASE, "preset": "toml-task", "candidates": 8, "seed": 3,
                                             "optimizer": {"steps": 30, "copy_mutate_steps": [10, 20]}}))  # fmt: skip
    assert config == expected
    assert config.optimizer.copy_mutate_steps == (10, 20)
    with pytest.raises(ConfigError, match=r"task\.toml: invalid TOML: .*line 2"):
        load_config(_write(tmp_path, "seed = 1\ncandidates = = 2\n", "task.toml"))


def test_example_file_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.predictors["bulk_modulus"] == "cgcnn-bulk-modulus"
    assert Window("band_gap", 1.8, 0.04, 0.2) in config.objectives
    assert Above("bulk_modulus", 100.0, margin=10.0, weight=0.05) in config.objectives
    assert Below("formation_energy", -0.5, margin=0.2) in config.objectives


# ---- validation errors name the key --------------------------------------------------------------------------------
def _set(path: str, value: Any) -> Any:
    def edit(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        if value is _DELETE:
            del node[int(last) if last.isdigit() else last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return edit


_DELETE = object()
ALL_KINDS = "allowed kinds: window, range, below, above, maximize, minimize"
ERRORS = [
    ("candidatez", 4, "candidatez: unknown key at the top level; allowed keys: preset, out, predictors"),
    ("predictors", _DELETE, "predictors: missing (required at the top level)"),
    ("objectives", _DELETE, "objectives: missing (required at the top level)"),
    ("candidates", "many", "candidates: expected an integer, got 'many' (a string)"),
    ("candidates", True, "candidates: expected an integer, got True (a boolean)"),
    ("candidates", 0, "candidates must be ≥ 1"),
    ("seed", 1.5, "seed: expected an integer, got 1.5"),
    ("target", "x", "target: expected a number or null, got 'x'"),
    ("device", "gpu", "device must be one of auto, cpu, cuda, got 'gpu'"),
    ("preset", 3, "preset: expected a string, got 3"),
    ("predictors", ["cgcnn-band-gap"], "predictors: expected a mapping of names to strings, got a list"),
    ("predictors.band_gap", "nope", "predictors.band_gap: unknown predictor 'nope'; known predictors: cgcnn-band-gap"),
    ("predictors.band_gap", "cgcnn-formation-energy", "predictors.band_gap: predictor cgcnn-formation-energy predicts "
                                                      "'formation_energy', not 'band_gap'"),
    ("predictors", {}, "predictors: at least one predictor is required"),
    ("judge.bulk_modulus", "megnet-bulk-modulus", "judge.bulk_modulus: no predictor of this run provides"),
    ("judge.band_gap", "cgcnn-band-gap", "judge.band_gap: judge for 'band_gap' must be held out"),
    ("judge.band_gap", "megnet-nope", "judge.band_gap: unknown predictor 'megnet-nope'; known predictors:"),
    ("ensemble.band_gap", ["cgcnn-band-gap"], "ensemble.band_gap: an ensemble needs at least two member predictors"),
    ("ensemble.band_gap", ["cgcnn-band-gap", "cgcnn-formation-energy"], "ensemble members must predict one property"),
    ("ensemble.band_gap", {"members": ["cgcnn-band-gap", "megnet-band-gap"], "spred": "sd"},
     "ensemble.band_gap.spred: unknown key of an ensemble"),
    ("objectives.0.agreement", "most", "agreement on band_gap: must be one of all, value"),
    ("objectives", {"kind": "window"}, "objectives: expected a non-empty list of objective terms, got a mapping"),
    ("objectives", [], "objectives: expected a non-empty list"),
    ("objectives.1", "below", "objectives[1]: expected an objective (a mapping), got a string"),
    ("objectives.1.kind", "windw", f"objectives[1].kind: unknown objective kind 'windw'; {ALL_KINDS}"),
    ("objectives.1.kind", _DELETE, f"objectives[1].kind: missing; {ALL_KINDS}"),
    ("objectives.0.target", _DELETE, "objectives[0].target: missing (required for a window objective)"),
    ("objectives.0.property", _DELETE, "objectives[0].property: missing (required for a window objective)"),
    ("objectives.0.eval_margn", 0.1, "objectives[0].eval_margn: unknown key for a window objective; allowed keys: "
                                     "kind, property, target, margin, eval_margin, weight"),
    ("objectives.1.cap", 1.0, "objectives[1].cap: unknown key for a below objective; allowed keys: kind, property, "
                              "threshold, margin, weight"),
    ("objectives.0.target", "high", "objectives[0].target: expected a number, got 'high' (a string)"),
    ("objectives.0.target", float("nan"), "objectives[0].target: expected a finite number"),
    ("objectives.0.margin", -1, "objectives[0]: window on band_gap: margins must be ≥ 0"),
    ("objectives.0.weight", -1, "objectives[0].weight: must be ≥ 0"),
    ("objectives.2.range", [0.8], "objectives[2].range: expected a list of 2 numbers, got 1 values"),
    ("objectives.2.range", [1.0, 0.8], "objectives[2]: range on tolerance: need low + 2·margin ≤ high"),
    ("objectives.2.low", 0.8, "objectives[2].low: unknown key for a range objective; allowed keys: kind, property, "
                              "range, margin, weight"),
    ("objectives.2.property", "tc", "objectives[2].property: no predictor provides 'tc'; available properties: "
                                    "band_gap, formation_energy, min_distance, tolerance"),
    ("objectives.1", {"kind": "maximize", "property": "band_gap", "threshold": 3, "cap": 2},
     "objectives[1]: maximize on band_gap: cap must be ≥ threshold"),
    ("objectives.1.property", "band_gap", "objectives[1].property: 'band_gap' already has a term (objectives[0])"),
    ("templates", "perovskite", "templates: expected the templates settings (a mapping), got a string"),
    ("templates.kindd", "x", "templates.kindd: unknown key in templates; allowed keys: kind, length_range, supercell, path"),
    ("templates.supercell", 0, "templates.supercell must be ≥ 1"),
    ("templates.path", 5, "templates.path: expected a string or null, got 5"),
    ("space.length_bounds", "2-10", "space.length_bounds: expected a list of 2 numbers, got '2-10' (a string)"),
    ("space.length_bounds", [10, 2], "space.length_bounds) must satisfy 0 < min < max"),
    ("space.ionic_masks", "yes", "space.ionic_masks: expected a boolean (true/false), got 'yes'"),
    ("optimizer.steps", 0, "optimizer: steps must be ≥ 1"),
    ("optimizer.copy_mutate_steps", [50, "x"], "optimizer.copy_mutate_steps[1]: expected an integer, got 'x'"),
    ("optimizer.lr_lattice", -0.1, "optimizer: lr_lattice must be ≥ 0"),
    ("evaluation.angle_range", [95, 85], "angle range (evaluation.angle_range) must satisfy"),
    ("evaluation.check_neutrality", 1, "evaluation.check_neutrality: expected a boolean"),
    # nonsense values, rejected by RunConfig.validate with the key named (issue 9)
    ("objectives.0.eval_margin", 0, "objectives[0].eval_margin must be > 0 and ≥ the training margin (0.04)"),
    ("objectives.0.eval_margin", 0.01, "objectives[0].eval_margin must be > 0 and ≥ the training margin (0.04)"),
    ("objectives.1.margin", -0.1, "objectives[1].margin must be ≥ 0 (below on formation_energy), got -0.1"),
    ("optimizer.top_ratio", 1.5, "optimizer.top_ratio must lie in [0, 1], got 1.5"),
    ("optimizer.top_ratio", -0.5, "optimizer.top_ratio must lie in [0, 1], got -0.5"),
    ("optimizer.keep_probability", 2.0, "optimizer.keep_probability must lie in [0, 1]"),
    ("optimizer.rebuild_every", 0, "optimizer.rebuild_every must be ≥ 1"),
    ("optimizer.copy_mutate_steps", [50, 250], "optimizer.copy_mutate_steps: step(s) [250] lie outside the run's steps"),
    ("target", 3.0, "target: 3 disagrees with the objectives (main window target: 2.0)"),
    # checked when the file is read, not when a run is half set up
    ("seed", -1, "seed must lie in [0, 2**32 - 1]"),
    ("seed", 2**32, "seed must lie in [0, 2**32 - 1]"),
    ("evaluation.min_distance_cutoff", 0, "evaluation.min_distance_cutoff must be > 0 Å, got 0"),
    ("evaluation.min_distance_cutoff", -1.0, "evaluation.min_distance_cutoff must be > 0 Å"),
    ("space.angle_bounds", [120, 60], "space: angle_bounds must satisfy 0 < min < max < 180 degrees"),
    ("space.logit_noise", -1, "space: logit_noise must be ≥ 0, got -1"),
    ("space.relative_length_bounds", [1.2, 1.5], "space: relative_length_bounds must satisfy 0 < min < 1 < max"),
    ("space.relative_angle_bounds", -5, "space: relative_angle_bounds must be > 0 degrees, got -5"),
    ("space.default_coord_bound", 0, "space: default_coord_bound must be > 0, got 0"),
]  # fmt: skip


@pytest.mark.parametrize(("key", "value", "message"), ERRORS, ids=[f"{k}={v!r}"[:40] for k, v, _ in ERRORS])
def test_validation_errors_name_the_key(key: str, value: Any, message: str, tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data.setdefault("judge", {})
    _set(key, value)(data)
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and message in text, text
    assert "\n" not in text
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)  # the same check without a file
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (None, "missing.yaml", "config file {path} does not exist"),
        ("a: 1", "config.txt", "{path}: unknown config file type '.txt'; use .yaml, .yml, .toml or .json"),
        ("a: [1, 2\nb: 3\n", "config.yaml", "{path}: invalid YAML: "),
        ("", "config.yaml", "{path}: the file is empty"),
        ("- 1\n- 2\n", "config.yaml", "{path}: expected a mapping of run settings at the top level, got a list"),
        ("seed: 1\nseed: 2\n", "config.yaml", "{path}: duplicate key 'seed' at line 2"),
        ("{\"seed\": 1,}", "config.json", "{path}: invalid JSON: "),
        (b"\xff\xfe\x00", "config.yaml", "cannot read config file {path}"),
    ],
    ids=["missing", "suffix", "yaml-syntax", "empty", "not-a-mapping", "duplicate", "json-syntax", "not-utf8"],
)
def test_file_errors_are_one_line(content: str | bytes | None, name: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message.format(path=path) in str(info.value) and "\n" not in str(info.value), str(info.value)


# ---- the command line ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [name for name, preset in PRESETS.items() if not preset.user_models])
def test_dump_config_round_trips(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--preset", name, "--dump-config"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# resolved from preset ")
    assert load_config(_write(tmp_path, out)) == build_config(name)


def test_dump_config_applies_flags_and_reads_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flags = ["--target", "1.5", "--candidates", "8", "--steps", "12", "--seed", "4", "--out", "o", "--no-judge"]
    assert main(["run", "--preset", "perovskite-bandgap", *flags, "--dump-config"]) == 0
    config = load_config(_write(tmp_path, capsys.readouterr().out))
    assert (config.target, config.candidates, config.optimizer.steps, config.seed, config.out) == (1.5, 8, 12, 4, "o")
    assert config.judge == {} and config.objectives[0] == Window("band_gap", 1.5, 0.04, 0.2)
    assert main(["run", str(EXAMPLE), "--steps", "5", "--dump-config"]) == 0
    again = load_config(_write(tmp_path, capsys.readouterr().out))
    example = load_config(EXAMPLE)  # --steps drops the copy-and-mutate steps at or beyond the new last step
    kept = tuple(s for s in example.optimizer.copy_mutate_steps if s < 5)
    assert again == replace(example, optimizer=replace(example.optimizer, steps=5, copy_mutate_steps=kept))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "FILE", "--target", "2"], "--target applies to --preset only"),
        (["run", "MISSING"], "does not exist"),
        (["run", "BAD"], "objectives[0].kind: unknown objective kind 'windw'"),
        (["run", "FILE", "--steps", "0"], "optimizer: steps must be ≥ 1"),
        (["run", "FILE", "--predictor", "bulk_modulus=cgcnn-bulk-modulus"], "this run has no property 'bulk_modulus'"),
    ],
)
def test_cli_file_errors(args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = copy.deepcopy(BASE)
    bad["objectives"][0]["kind"] = "windw"
    paths = {"FILE": str(_write(tmp_path, BASE)), "MISSING": str(tmp_path / "nope.yaml"),
             "BAD": str(_write(tmp_path, bad, "bad.yaml"))}  # fmt: skip
    assert main([paths.get(a, a) for a in args] + ["--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("smoacs: error:") and message in err[0], err


@pytest.mark.parametrize("args", [["run"], ["run", "x.yaml", "--preset", "perovskite-bandgap"]], ids=["none", "both"])
def test_exactly_one_of_file_and_preset(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exactly one of a config file" in err[0]


def test_run_example_file_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "run"
    code = main(["run", str(EXAMPLE), "--candidates", "2", "--batch-size", "2", "--steps", "3", "--device", "cpu",
                 "--out", str(out_dir), "--no-progress"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"wrote {out_dir}/ (2 candidates)" in captured.out
    header = (out_dir / "result.csv").read_text().splitlines()[0].split(",")
    assert {"band_gap", "bulk_modulus", "formation_energy", "bulk_modulus_ok", "bulk_modulus_judge"} <= set(header)
    meta = json.loads((out_dir / "run.json").read_text())
    expected = load_config(EXAMPLE)
    expected = expected.with_overrides(candidates=2, batch_size=2, device="cpu", out=str(out_dir), steps=3)
    assert RunConfig.from_dict(meta["config"]) == expected
    assert load_config(out_dir / "run.json") == expected  # a run.json is itself a config file


# ---- one source of truth for the target; every documented override (issue 9) ----------------------------------------
def test_target_is_derived_from_the_objective(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--preset", "perovskite-bandgap", "--target", "1.5", "--dump-config"]) == 0
    dumped = capsys.readouterr().out
    assert "\ntarget:" not in dumped  # only the objective states it
    edited = dumped.replace("target: 1.5", "target: 3.0")
    config = load_config(_write(tmp_path, edited))
    assert config.target == 3.0 and config.objectives[0] == Window("band_gap", 3.0, 0.04, 0.2)
    old_style = {**BASE, "target": 2.0}  # an older dumped file or run.json: accepted when it agrees
    assert config_from_dict(old_style).target == 2.0


def test_report_title_follows_the_objective() -> None:
    from smoacs.evaluate.evaluator import EvaluationSettings
    from smoacs.evaluate.rerun import report_info

    config = build_config("perovskite-bandgap", 1.5).to_dict()
    info = report_info(config, EvaluationSettings(), np.zeros(5), "none", "result.csv")
    assert info["title"] == "smoacs run: perovskite-bandgap, target band_gap = 1.5"


def test_with_overrides_accepts_every_documented_override() -> None:
    config = build_config("perovskite-bandgap", out="runs/x")
    changed = config.with_overrides(
        steps=30, candidates=8, batch_size=4, seed=3, device="cpu", out="runs/y", length_bounds=(2.5, 9.0),
        templates="some/dir", relax="chgnet", top_ratio=0.5, optimizer={"lr_lattice": 0.01}, angle_range=(80.0, 100.0),
    )  # fmt: skip
    assert changed.optimizer.steps == 30 and changed.optimizer.copy_mutate_steps == ()  # 50, 100, 150 ≥ 30
    assert changed.optimizer.lr_lattice == 0.01 and changed.optimizer.top_ratio == 0.5
    assert (changed.candidates, changed.batch_size, changed.seed, changed.device, changed.out) == (8, 4, 3, "cpu", "runs/y")
    assert changed.space.length_bounds == (2.5, 9.0) and changed.templates.path == "some/dir"
    assert changed.evaluation.relax == "chgnet" and changed.evaluation.angle_range == (80.0, 100.0)
    assert config.with_overrides(steps=120).optimizer.copy_mutate_steps == (50, 100)
    assert config.with_overrides(steps=60, copy_mutate_steps=(10,)).optimizer.copy_mutate_steps == (10,)
    with pytest.raises(TypeError, match="'stepz' is not a setting"):
        config.with_overrides(stepz=3)
    with pytest.raises(TypeError, match=r"'min_distance_cutoff' is in several sections \(optimizer, evaluation\)"):
        config.with_overrides(min_distance_cutoff=3.0)
    with pytest.raises(ConfigError, match="optimizer: steps must be ≥ 1"):
        config.with_overrides(steps=0)


def test_config_md_lists_every_dumped_key(capsys: pytest.CaptureFixture[str]) -> None:
    import re

    doc = (Path(__file__).resolve().parents[1] / "docs" / "CONFIG.md").read_text()
    example = doc[doc.index("## Complete example") : doc.index("## Objective terms")]
    for name in ("perovskite-bandgap", "wide-bandgap"):
        assert main(["run", "--preset", name, "--dump-config"]) == 0
        dumped = yaml.safe_load(capsys.readouterr().out)
        for key, value in dumped.items():
            assert re.search(rf"^{key}:", example, re.M), key
            if isinstance(value, dict) and key not in ("predictors", "judge"):
                for sub in value:
                    assert re.search(rf"^\s+{sub}:", example, re.M), f"{key}.{sub}"
