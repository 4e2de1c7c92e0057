"""Sublattice limits from presets, config files and the command line (issue 18): alloy and mixed-halide presets,
``--max-species`` / ``--dopant-fraction`` / ``--allowed-elements``, one-line errors, an end-to-end run, re-evaluation."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from smoacs.cli import main
from smoacs.configfile import load_config
from smoacs.design import DesignSpace
from smoacs.design.sublattices import SublatticeLimits
from smoacs.evaluate.rerun import evaluate_run
from smoacs.presets import PRESETS, build_config
from smoacs.runner import build_template_set

TINY = ["--preset", "perovskite-bandgap", "--candidates", "3", "--batch-size", "3", "--steps", "4", "--device", "cpu",
        "--no-oracle", "--no-progress", "--physics", "none"]  # fmt: skip


def test_alloy_and_mixed_halide_presets() -> None:
    assert {"perovskite3x3x3-alloy", "perovskite3x3x3-mixed-halide"} <= set(PRESETS)
    alloy = build_config("perovskite3x3x3-alloy")
    assert alloy.preset == "perovskite3x3x3-alloy" and alloy.templates.supercell == 3
    assert alloy.space.sublattices == {
        "A": SublatticeLimits(1), "B": SublatticeLimits(2, fraction=(0.1, 0.4)), "X": SublatticeLimits(1),
    }  # fmt: skip
    assert alloy.objectives == build_config("perovskite3x3x3-bandgap").objectives
    halide = build_config("perovskite3x3x3-mixed-halide", target=2.2)
    assert halide.space.sublattices["X"] == SublatticeLimits(2, ("F", "Cl", "Br", "I"), (0.1, 0.5))
    templates, _ = build_template_set(halide.with_overrides(candidates=2))
    space = DesignSpace(templates, halide.space)
    assert space.combo_valid[:, 0].all() and not space.combo_valid[:, 1].any()  # halides: only A⁺B²⁺X⁻₃


def test_cli_flags_set_the_limits_and_dump_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flags = ["--max-species", "A=1,B=2,X=2", "--dopant-fraction", "B=0.0:0.25", "--allowed-elements", "X=Cl,Br,I"]
    assert main(["run", "--preset", "perovskite3x3x3-bandgap", *flags, "--dump-config"]) == 0
    text = capsys.readouterr().out
    dumped = yaml.safe_load(text)["space"]["sublattices"]
    assert dumped["B"] == {"max_species": 2, "allowed": [], "fraction": [0.0, 0.25]}
    assert dumped["X"] == {"max_species": 2, "allowed": ["Cl", "Br", "I"], "fraction": None}
    path = tmp_path / "alloy.yaml"
    path.write_text(text)
    config = load_config(path)
    assert config.space.sublattices["X"] == SublatticeLimits(2, ("Cl", "Br", "I"))
    assert load_config(path).to_dict() == config.to_dict()


def test_config_files_declare_limits(tmp_path: Path) -> None:
    base = {"predictors": {"band_gap": "cgcnn-band-gap"},
            "objectives": [{"kind": "window", "property": "band_gap", "target": 2.0}]}  # fmt: skip
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({**base, "space": {"sublattices": {"B": {"max_species": 2, "fraction": [0.1, 0.3]}}}}))
    assert load_config(path).space.sublattices == {"B": SublatticeLimits(2, fraction=(0.1, 0.3))}
    toml = tmp_path / "run.toml"
    toml.write_text('[predictors]\nband_gap = "cgcnn-band-gap"\n[[objectives]]\nkind = "window"\nproperty = "band_gap"\n'
                    'target = 2.0\n[space.sublattices.X]\nmax_species = 2\nallowed = ["Br", "I"]\nfraction = [0.0, 0.5]\n')  # fmt: skip
    assert load_config(toml).space.sublattices == {"X": SublatticeLimits(2, ("Br", "I"), (0.0, 0.5))}


@pytest.mark.parametrize(
    ("sublattices", "message"),
    [
        ({"B": {"max_specis": 2}}, "space.sublattices.B.max_specis: unknown key in space.sublattices.B; allowed keys: max_species"),
        ({"B": {"max_species": "two"}}, "space.sublattices.B.max_species: expected an integer or null"),
        ({"B": {"max_species": 1, "fraction": [0, 0.2]}}, "space.sublattices.B: a fraction window needs max_species ≥ 2"),
        ({"B": 2}, "space.sublattices.B: expected the space.sublattices.B settings"),
        ([1], "space.sublattices: expected a mapping of names to settings"),
    ],
)
def test_config_file_errors_name_the_key(sublattices: object, message: str, tmp_path: Path) -> None:
    from smoacs.errors import ConfigError

    path = tmp_path / "bad.yaml"
    data = {"predictors": {"band_gap": "cgcnn-band-gap"}, "space": {"sublattices": sublattices},
            "objectives": [{"kind": "window", "property": "band_gap", "target": 2.0}]}  # fmt: skip
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        load_config(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-species", "A=one"], "--max-species A=one: expected a whole number"),
        (["--dopant-fraction", "B=0.0-0.25", "--max-species", "B=2"], "expected MIN:MAX fractions"),
        (["--dopant-fraction", "B=0:0.2"], "sublattice B: a fraction window needs max_species ≥ 2"),
        (["--max-species", "b=1"], "name site group(s) b that no template has"),
        (["--max-species", "B=2", "--dopant-fraction", "B=0.2:0.3"], "has 1 sites: no number of minority sites"),
        (["--allowed-elements", "X=Cs"], "allowed elements fit no oxidation pattern"),
    ],
)
def test_cli_limit_errors_are_one_line(flags: list[str], message: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    assert main(["run", *TINY, *flags, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("smoacs: error:") and message in err[0], err


def test_limited_run_writes_designs_and_reevaluates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    flags = ["--max-species", "X=1", "--allowed-elements", "X=Cl,Br"]
    assert main(["run", *TINY, *flags, "--out", str(out)]) == 0, capsys.readouterr().err
    with (out / "result.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:  # every unit cell holds one of the two halides on all three X sites
        assert row["composition_ok"] == "True" and row["composition_reason"] == ""
        assert row["host"] == row["design"] and row["host"][-3:] in ("Cl3", "Br3")  # host in A, B, X order
        assert sorted(row["formula"]) == sorted(row["host"])  # the same cell as the formula
    assert "sublattice X: at most 1 element, from Cl, Br (composition_ok)" in (out / "report.md").read_text()
    again = evaluate_run(out, references=[], device="cpu")
    assert [r["composition_ok"] for r in again.rows] == [True] * 3
    assert [r["design"] for r in again.rows] == [r["design"] for r in rows]
