"""Campaign files: grid expansion, cell names, cells configured as `smoacs run` would be, bad files → one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from smoacs.campaign.spec import campaign_from_dict, cell_name, expand, load_campaign
from smoacs.cli import build_parser, main
from smoacs.errors import ConfigError
from smoacs.options import RunOptions, run_config

BASE = {"preset": "perovskite-bandgap", "candidates": 4, "steps": 3, "physics": "none"}


def test_grid_is_the_cartesian_product_in_file_order(tmp_path: Path) -> None:
    spec = campaign_from_dict({"base": BASE, "grid": {"target": [0.5, 2.5], "seed": [0, 1, 2]}, "out": str(tmp_path)})
    cells = expand(spec)
    assert [c.overrides for c in cells] == [{"target": t, "seed": s} for t in (0.5, 2.5) for s in (0, 1, 2)]
    assert [c.name for c in cells][:2] == ["target-0.5_seed-0", "target-0.5_seed-1"]
    assert len({c.name for c in cells}) == 6
    for cell in cells:
        assert cell.config.out == str(tmp_path / cell.name)
        assert cell.config.seed == cell.overrides["seed"] and cell.config.target == cell.overrides["target"]
        assert cell.config.threads == 1  # the campaign's default: one thread per run


def test_names_from_overrides() -> None:
    assert cell_name({}) == "run"
    assert cell_name({"target": 2.0, "batch_size": 8}) == "target-2_batch-size-8"
    assert cell_name({"predictor": "band_gap=megnet-band-gap"}) == "predictor-band-gap-megnet-band-gap"
    assert cell_name({"predictor": {"band_gap": "megnet-band-gap"}}) == "predictor-band-gap-megnet-band-gap"
    assert cell_name({"templates": "/data/cells/SrTiO3.cif", "no_oracle": True}) == "templates-SrTiO3_no-oracle-true"
    assert cell_name({"length_bounds": [2.0, 9.5]}) == "length-bounds-2-9.5"


def test_a_cell_is_configured_as_smoacs_run_with_the_same_flags(tmp_path: Path) -> None:
    spec = campaign_from_dict({
        "base": {**BASE, "batch-size": 2, "no_oracle": True, "method": "gradient", "max_species": "A=1,B=2,X=1",
                 "known_values": "all"},
        "grid": {"predictor": [["band_gap=megnet-band-gap"]], "seed": [3]},
        "out": str(tmp_path),
        "threads": 2,
    })  # fmt: skip
    (cell,) = expand(spec)
    argv = ["run", "--preset", "perovskite-bandgap", "--candidates", "4", "--steps", "3", "--physics", "none",
            "--batch-size", "2", "--no-oracle", "--predictor", "band_gap=megnet-band-gap", "--seed", "3",
            "--threads", "2", "--method", "gradient", "--max-species", "A=1,B=2,X=1", "--known-values", "all",
            "--out", cell.config.out]  # fmt: skip
    assert cell.config == run_config(RunOptions.from_namespace(build_parser().parse_args(argv)))
    assert cell.config.predictors["band_gap"] == "megnet-band-gap" and cell.config.oracles == {}


def test_method_is_a_run_option(tmp_path: Path) -> None:
    spec = campaign_from_dict({"base": BASE, "grid": {"method": ["gradient"]}, "out": str(tmp_path)})
    assert expand(spec)[0].config.search.method == "gradient"
    bad = campaign_from_dict({"base": BASE, "grid": {"method": ["no-such-method"]}, "out": str(tmp_path)})
    with pytest.raises(ConfigError, match="cell method-no-such-method: unknown search method"):
        expand(bad)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("grid: {seed: [0]}\n", "base: missing"),
        ("base: {preset: perovskite-bandgap}\nbogus: 1\n", "bogus: unknown key at the top level"),
        ("base: {preset: perovskite-bandgap}\ngrid: {seed: 0}\n", "grid.seed: expected a non-empty list"),
        ("base: {preset: perovskite-bandgap}\ngrid: {seed: []}\n", "grid.seed: expected a non-empty list"),
        ("base: {preset: perovskite-bandgap, colour: red}\n", "base.colour: not a run option"),
        ("base: {preset: perovskite-bandgap}\ngrid: {steps: [ten]}\n", "grid.steps: expected an integer"),
        ("base: {preset: perovskite-bandgap}\ngrid: {out: [a, b]}\n", "grid.out: the campaign sets each run's directory"),
        ("base: {preset: perovskite-bandgap}\nthreads: 0\n", "threads: expected an integer ≥ 1"),
        ("base: {preset: perovskite-bandgap}\ngrid: {predictor: [band_gap]}\n", "expects PROPERTY=PREDICTOR"),
        ("base: {preset: perovskite-bandgap\n", "invalid YAML"),
        ("base: {preset: perovskite-bandgap}\nmemory_gb: .nan\n", "memory_gb: expected a number ≥ 0"),
        ("base: {preset: perovskite-bandgap}\nmemory_gb: .inf\n", "memory_gb: expected a number ≥ 0"),
    ],
)
def test_bad_campaign_files_are_one_line_config_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_campaign(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"preset": ["no-such-preset"]}, "cell preset-no-such-preset: unknown preset"),
        ({"candidates": [0]}, "cell candidates-0: candidates must be ≥ 1"),
        ({"target": [-1.0]}, "cell target--1: band-gap target must be ≥ 0"),
        ({"seed": [1, 1]}, "would share the directory"),
        ({"seed": [0, 4294967296]}, r"cell seed-4.29497e\+09: seed must lie in \[0, 2\*\*32 - 1\]"),
    ],
)
def test_bad_cells_fail_before_anything_runs(tmp_path: Path, grid: dict, message: str) -> None:
    spec = campaign_from_dict({"base": {"preset": "perovskite-bandgap"}, "grid": grid, "out": str(tmp_path / "c")})
    with pytest.raises(ConfigError, match=message):
        expand(spec)
    assert not (tmp_path / "c").exists()


def test_cli_reports_a_bad_campaign_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[base]\npreset = "perovskite-bandgap"\n[grid]\ntarget = ["high"]\n')
    assert main(["campaign", str(path), "--backend", "local"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("smoacs: error: ") and err.count("\n") == 1 and "grid.target: expected a number" in err


def test_cli_refuses_a_file_as_the_campaign_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("base: {preset: perovskite-bandgap, candidates: 2, steps: 1}\ngrid: {seed: [0]}\n")
    (tmp_path / "taken").write_text("keep\n")
    assert main(["campaign", str(path), "--backend", "local", "--out", str(tmp_path / "taken")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file; choose another --out" in err
    assert (tmp_path / "taken").read_text() == "keep\n"
