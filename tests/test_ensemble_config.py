"""Ensembles and judges in config files (YAML, TOML), in the Python API and on the command line; the oracle aliases."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from smoacs.cli import _run_config, build_parser, main
from smoacs.config import RunConfig
from smoacs.configfile import dump_config, load_config
from smoacs.errors import ConfigError
from smoacs.objectives import Window
from smoacs.presets import build_config

ISSUE_FLAGS = ["--ensemble", "band_gap=cgcnn-band-gap,megnet-band-gap", "--judge", "band_gap=megnet-mf-band-gap:fidelity=pbe"]
ENSEMBLE = "ensemble[cgcnn-band-gap,megnet-band-gap]"
JUDGE = "megnet-mf-band-gap:fidelity=pbe"
BASE = {
    "out": "runs/x",
    "predictors": {"formation_energy": "cgcnn-formation-energy"},
    "ensemble": {"band_gap": ["cgcnn-band-gap", "megnet-band-gap"]},
    "judge": {"band_gap": JUDGE},
    "objectives": [
        {"kind": "window", "property": "band_gap", "target": 2.5, "margin": 0.04, "eval_margin": 0.2},
        {"kind": "below", "property": "formation_energy", "threshold": -0.5},
    ],
}


def _config(flags: list[str]) -> RunConfig:
    return _run_config(build_parser().parse_args(["run", "--preset", "perovskite-bandgap", "--target", "2.5", *flags]))


def test_the_issue_command_line() -> None:
    config = _config(ISSUE_FLAGS)
    assert config.predictors == {"band_gap": ENSEMBLE, "formation_energy": "cgcnn-formation-energy"}
    assert config.judge == {"band_gap": JUDGE, "formation_energy": "megnet-formation-energy"}
    assert config.objectives[0] == Window("band_gap", 2.5, 0.04, 0.2)  # agreement "all": every member in the window


def test_the_default_judge_is_held_out_from_the_issue_ensemble() -> None:
    assert _config(ISSUE_FLAGS[:2]).judge["band_gap"] == JUDGE  # no --judge needed: the preset's judge is in no ensemble


def test_yaml_shorthand_equals_the_spec_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(BASE))
    config = load_config(path)
    assert config.predictors["band_gap"] == ENSEMBLE and config.judge == {"band_gap": JUDGE}
    spelled = {**BASE, "predictors": {**BASE["predictors"], "band_gap": ENSEMBLE}}
    del spelled["ensemble"]
    path.write_text(yaml.safe_dump(spelled))
    assert load_config(path) == config
    path.write_text(dump_config(config))
    assert load_config(path) == config
    assert RunConfig.from_dict(config.to_dict()) == config


def test_toml_and_the_mapping_form(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        'out = "runs/x"\n'
        "[predictors]\nformation_energy = \"cgcnn-formation-energy\"\n"
        "[ensemble.band_gap]\nmembers = [\"cgcnn-band-gap\", \"megnet-band-gap\"]\nvalue = \"median\"\nspread = \"sd\"\n"
        f'[judge]\nband_gap = "{JUDGE}"\n'
        '[[objectives]]\nkind = "window"\nproperty = "band_gap"\ntarget = 2.5\nagreement = "value"\nspread_tolerance = 0.3\n'
    )
    config = load_config(path)
    assert config.predictors["band_gap"] == f"{ENSEMBLE}:value=median:spread=sd"
    assert config.objectives[0] == Window("band_gap", 2.5, agreement="value", spread_tolerance=0.3)
    dumped = tmp_path / "d.yaml"
    dumped.write_text(dump_config(config))
    assert load_config(dumped) == config


def test_python_api_overrides() -> None:
    config = build_config("wide-bandgap", 4.0, "runs/x").with_overrides(
        ensemble={"band_gap": "cgcnn-band-gap, megnet-band-gap"}, judge={"band_gap": JUDGE}
    )
    config.validate()
    assert config.predictors["band_gap"] == ENSEMBLE and config.judge == {"band_gap": JUDGE}
    old = build_config("wide-bandgap", 4.0, "runs/x").with_overrides(oracles={"band_gap": JUDGE})
    assert old.judge == old.oracles == {"band_gap": JUDGE}  # the former name still works


def test_oracles_key_of_earlier_files(tmp_path: Path) -> None:
    data = {**BASE, "oracles": BASE["judge"]}
    del data["judge"]
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_config(path).judge == {"band_gap": JUDGE}
    path.write_text(yaml.safe_dump({**data, "judge": {}}))
    with pytest.raises(ConfigError, match="oracles: the former name of judge"):
        load_config(path)


@pytest.mark.parametrize(
    ("judge", "message"),
    [
        ("megnet-band-gap", "megnet-band-gap is optimised through"),
        ("ensemble[megnet-mf-band-gap, cgcnn-band-gap]", "cgcnn-band-gap is optimised through"),
    ],
)
def test_a_judge_must_be_held_out(judge: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**BASE, "judge": {"band_gap": judge}}))
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_oracle_flag_is_a_deprecated_alias(capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(["--oracle", f"band_gap={JUDGE}"])
    assert config.judge["band_gap"] == JUDGE
    assert "--oracle is deprecated; use --judge" in capsys.readouterr().err
    assert _config(["--no-oracle"]).judge == {} == _config(["--no-judge"]).judge


def test_dump_config_of_the_issue_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--preset", "perovskite-bandgap", "--target", "2.5", *ISSUE_FLAGS, "--dump-config"]) == 0
    dumped = yaml.safe_load(capsys.readouterr().out)
    assert dumped["predictors"]["band_gap"] == ENSEMBLE and dumped["judge"]["band_gap"] == JUDGE


def test_campaign_options_take_ensemble_and_judge() -> None:
    from smoacs.options import options_from_mapping, run_config

    options = options_from_mapping({
        "preset": "perovskite-bandgap", "target": 2.5,
        "ensemble": {"band_gap": "cgcnn-band-gap,megnet-band-gap"}, "judge": [f"band_gap={JUDGE}"], "no-judge": False,
    })  # fmt: skip
    config = run_config(options)
    assert config.predictors["band_gap"] == ENSEMBLE and config.judge["band_gap"] == JUDGE
    assert run_config(options_from_mapping({"preset": "wide-bandgap", "no_judge": True})).judge == {}
