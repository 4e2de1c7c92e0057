"""The smoacs command: listings, one-line errors with exit code 2, a tiny run, and the module entry point."""

from __future__ import annotations

import csv

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smoacs.cli import main

SRC = Path(__file__).resolve().parents[1] / "src"


def test_presets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["preset", "--target", "default"]
    rows = {line.split()[0]: line for line in lines[2:] if line[:1].strip()}  # not wrapped continuation lines
    assert {"perovskite-bandgap", "perovskite-bulk-modulus"} <= set(rows)
    column = lines[0].index("default")  # an aligned table: every value starts under its header
    assert {line[column:].split()[0] for line in rows.values()} >= {"2.5", "160"}
    for header in ("--target", "description"):
        at = lines[0].index(header)
        assert all(line[at - 1] == " " and line[at] != " " for line in rows.values()), header


def test_predictors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predictors"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["name", "property", "unit"]
    names = [line.split()[0] for line in lines[2:] if line.strip() and not line.startswith(" ")]
    assert {"cgcnn-band-gap", "cgcnn-formation-energy", "cgcnn-bulk-modulus"} <= set(names)
    column = lines[0].index("property")
    rows = [line for line in lines[2:] if line.split() and line.split()[0] in names]
    assert all(line[column:].split()[0] in ("band_gap", "formation_energy", "bulk_modulus") or line[column - 1] == " "
               for line in rows)  # fmt: skip
    assert {line[column:].split()[0] for line in rows if line.startswith("cgcnn-band-gap ")} == {"band_gap"}


def _garbage(tmp_path: Path) -> str:
    path = tmp_path / "garbage.cif"
    path.write_text("data_nothing\nthis is not a crystal\n")
    return str(path)


def _huge_perovskite(tmp_path: Path) -> str:
    from pymatgen.core import Lattice, Structure

    path = tmp_path / "huge.cif"
    frac = [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]]
    Structure(Lattice.cubic(12.0), ["Sr", "Ti", "O", "O", "O"], frac).to(filename=str(path))
    return str(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "no-such-preset"], "unknown preset 'no-such-preset'"),
        (["--preset", "perovskite-bandgap", "--target", "-1"], "band-gap target must be ≥ 0"),
        (["--preset", "perovskite-bulk-modulus", "--target", "0"], "bulk-modulus target must be > 0"),
        (["--preset", "perovskite-bandgap", "--length-bounds", "10", "2"], "length bounds"),
        (["--preset", "perovskite-bandgap", "--length-bounds", "8", "9"], "template length range"),
        (["--preset", "perovskite-bandgap", "--candidates", "0"], "candidates must be ≥ 1"),
        (["--preset", "perovskite-bandgap", "--templates", "GARBAGE"], "cannot read template file"),
        (["--preset", "perovskite-bandgap", "--templates", "MISSING"], "template path does not exist"),
        (["--preset", "perovskite-bandgap", "--target", "nan"], "target must be a finite number"),
        (["--preset", "perovskite-bandgap", "--templates", "HUGE"], "outside the length bounds"),
        (["--preset", "perovskite-bandgap", "--batch-size", "0"], "batch_size must be ≥ 1, got 0"),
        (["--preset", "perovskite-bandgap", "--seed", "-1"], "seed must lie in [0, 2**32 - 1]"),
        (["--preset", "perovskite-bandgap", "--seed", "4294967296"], "seed must lie in [0, 2**32 - 1]"),
        (["--preset", "perovskite-bandgap", "--predictor", "band_gap=cgcnn-band-gap:foo=1"], "unexpected keyword argument 'foo'"),
        (["--preset", "perovskite-bandgap", "--predictor", "band_gap=megnet-mf-band-gap:fidelity=zzz"],
         "option fidelity must be one of pbe, gllb, hse, exp"),
        (["--preset", "perovskite-bandgap", "--physics", "none", "--reference", "GARBAGE"], "cannot read reference file"),
    ],
    ids=["preset", "negative-target", "zero-modulus", "length-bounds", "range-outside", "candidates", "garbage",
         "missing", "nan-target", "template-too-large", "batch-size-0", "seed-negative", "seed-too-large",
         "predictor-unknown-option", "predictor-bad-option-value", "reference-garbage"],  # fmt: skip
)
def test_user_errors_are_one_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], recwarn: pytest.WarningsRecorder
) -> None:
    special = {"GARBAGE": lambda: _garbage(tmp_path), "MISSING": lambda: str(tmp_path / "missing"),
               "HUGE": lambda: _huge_perovskite(tmp_path)}  # fmt: skip
    args = [special[a]() if a in special else a for a in args]
    out_dir = tmp_path / "out"
    code = main(["run", *args, "--out", str(out_dir), "--candidates" if "--candidates" not in args else "--seed", "2",
                 "--steps", "1", "--no-progress"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("smoacs: error:") and message in lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert not out_dir.exists(), "a refused run writes nothing"
    assert not [str(w.message) for w in recwarn], "warnings would print extra stderr lines"


@pytest.mark.parametrize(
    "args", [["run"], ["run", "--preset", "perovskite-bandgap", "--target", "abc"], ["frobnicate"],
             ["run", "--preset", "perovskite-bandgap", "--device", "gpu"], ["evaluate", "x", "--device", "gpu"]],
    ids=["missing-preset", "non-numeric-target", "unknown-command", "run-device-gpu", "evaluate-device-gpu"],
)
def test_argument_errors_are_one_line(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("smoacs: error:")


def test_tiny_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "run"
    code = main(["run", "--preset", "perovskite-bandgap", "--target", "1.5", "--candidates", "2", "--batch-size", "2",
                 "--steps", "3", "--device", "cpu", "--out", str(out_dir), "--no-progress"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"wrote {out_dir}/ (2 candidates)" in captured.out
    assert (out_dir / "result.csv").read_text().count("\n") == 3
    with (out_dir / "result.csv").open() as handle:  # physics is the default: judged on the relaxed cells
        rows = list(csv.DictReader(handle))
    for row in rows:
        assert row["cif"] == f"relaxed/{row['id']}.cif" and (out_dir / row["cif"]).is_file()
        assert (out_dir / row["design_cif"]).is_file() and row["relax_status"] in ("converged", "step_limit", "failed")
        assert row["unrelaxed_success"] in ("True", "False")
        assert row["success"] == "False" or row["converged_ok"] == "True"


def test_module_entry_point(tmp_path: Path) -> None:
    assert 'if __name__ == "__main__":' in (SRC / "smoacs" / "cli.py").read_text()
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-m", "smoacs.cli", "run", "--preset", "perovskite-bandgap", "--templates", _garbage(tmp_path),
         "--out", str(tmp_path / "x"), "--no-progress"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("smoacs: error: cannot read template file")
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_predictor_swap_makes_the_preset_model_the_judge() -> None:
    from smoacs.cli import _run_config, build_parser

    args = build_parser().parse_args(
        ["run", "--preset", "perovskite-bandgap", "--predictor", "band_gap=megnet-mf-band-gap:fidelity=pbe"]
    )
    config = _run_config(args)
    assert config.predictors["band_gap"] == "megnet-mf-band-gap:fidelity=pbe"
    assert config.judge["band_gap"] == "cgcnn-band-gap"
    assert config.judge["formation_energy"] == "megnet-formation-energy"


def test_max_copies_sets_the_diversity_rule() -> None:
    from smoacs.cli import _run_config, build_parser

    parse = build_parser().parse_args
    assert _run_config(parse(["run", "--preset", "perovskite-bandgap"])).optimizer.max_composition_copies == 0
    config = _run_config(parse(["run", "--preset", "perovskite-bandgap", "--max-copies", "4"]))
    assert config.optimizer.max_composition_copies == 4


def test_negative_max_copies_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--preset", "perovskite-bandgap", "--max-copies", "-1", "--dump-config"]) != 0
    err = capsys.readouterr().err
    assert "max_composition_copies must be ≥ 0" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--predictor", "band_gap"], "expects PROPERTY=PREDICTOR"),
        (["--predictor", "band_gap=no-such-model"], "unknown predictor 'no-such-model'"),
        (["--predictor", "tc=cgcnn-band-gap"], "no property 'tc'"),
        (["--judge", "band_gap=cgcnn-band-gap"], "must be held out: cgcnn-band-gap is optimised through"),
        (["--judge", "bulk_modulus=megnet-bulk-modulus"], "no predictor of this run provides"),
        (["--ensemble", "band_gap=cgcnn-band-gap,megnet-mf-band-gap:fidelity=pbe"],
         "must be held out: megnet-mf-band-gap:fidelity=pbe is optimised"),
        (["--ensemble", "band_gap=cgcnn-band-gap"], "two or more"),
        (["--ensemble", "tc=cgcnn-band-gap,megnet-band-gap"], "no property 'tc'"),
    ],
)
def test_predictor_flags_errors(flags: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--preset", "perovskite-bandgap", *flags, "--steps", "1", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]


# ---- never lose a run (issue 9) -------------------------------------------------------------------------------------
TINY = ["--preset", "perovskite-bandgap", "--candidates", "2", "--steps", "1", "--device", "cpu", "--no-judge",
        "--no-progress", "--physics", "none"]  # fmt: skip


def test_default_out_is_unique_per_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert main(["run", *TINY]) == 0
    assert main(["run", *TINY, "--seed", "1"]) == 0
    assert main(["run", *TINY]) == 0  # the same seed again: a new directory, the first run untouched
    out = capsys.readouterr().out
    runs = sorted(p.name for p in Path("runs").iterdir())
    assert runs == ["perovskite-bandgap-2.5-s0", "perovskite-bandgap-2.5-s0-2", "perovskite-bandgap-2.5-s1"]
    assert "wrote runs/perovskite-bandgap-2.5-s0-2/" in out
    first = json.loads(Path("runs/perovskite-bandgap-2.5-s0/run.json").read_text())
    assert first["config"]["out"] == "runs/perovskite-bandgap-2.5-s0" and first["config"]["seed"] == 0


def test_a_run_json_is_not_rerun_in_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "first"
    assert main(["run", *TINY, "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert main(["run", str(out / "run.json"), "--no-progress"]) == 0
    assert f"wrote {tmp_path / 'first-2'}/" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert main(["run", str(out / "run.json"), "--out", str(out), "--no-progress"]) == 2  # explicit: refused
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{out} already holds a run" in err[0] and "--overwrite" in err[0]


def test_overwrite_replaces_the_old_run_and_its_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["run", *TINY, "--candidates", "4", "--batch-size", "2", "--out", str(out)]) == 0
    assert main(["run", *TINY, "--seed", "3", "--out", str(out), "--overwrite"]) == 0
    assert sorted(p.stem for p in (out / "structures").iterdir()) == ["c00000", "c00001"]  # no stale c00002/3
    assert json.loads((out / "run.json").read_text())["config"]["seed"] == 3


@pytest.mark.parametrize("where", ["file", "below-a-file"])
def test_unusable_out_is_one_line(where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" if where == "file" else tmp_path / "file" / "run"
    assert main(["run", *TINY, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("smoacs: error:") and str(out) in err[0], err
    assert "Traceback" not in "\n".join(err)


@pytest.mark.parametrize("place", ["before", "after"])
def test_verbose_logs_the_stages_with_timings(place: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    import logging

    flags = ["-v", "run", *TINY] if place == "before" else ["run", *TINY, "-v"]
    with caplog.at_level(logging.INFO, logger="smoacs"):
        assert main([*flags, "--out", str(tmp_path / "v")]) == 0
    messages = [r.getMessage() for r in caplog.records if r.name == "smoacs.runner"]
    for stage in ("build_problem", "search_batch (batch 1/1)", "evaluate_batch (batch 1/1)", "finish_run"):
        assert any(m.startswith(f"{stage}: done in ") and m.endswith(" s") for m in messages), (stage, messages)


def test_length_bounds_can_narrow_the_range(tmp_path: Path) -> None:
    from smoacs.cli import _run_config, build_parser

    args = build_parser().parse_args(["run", "--preset", "perovskite-bandgap", "--length-bounds", "4", "5"])
    config = _run_config(args)
    assert config.space.length_bounds == (4.0, 5.0) and config.templates.length_range == (4.0, 5.0)
    general = build_parser().parse_args(["run", "--preset", "wide-bandgap", "--length-bounds", "2", "9"])
    assert _run_config(general).space.length_bounds == (2.0, 9.0)  # prototypes: length_range is not used


def test_out_of_memory_in_a_batch_is_one_line_with_a_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    import torch

    import smoacs.runner

    def oom(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(smoacs.runner, "search_batch", oom)
    assert main(["run", *TINY, "--out", str(tmp_path / "oom")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("smoacs: error: mini-batch 0 failed: OutOfMemoryError: CUDA out of")
    assert "try a smaller --batch-size" in err[0] and "Traceback" not in err[0]


def test_run_on_an_absent_gpu_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: --device cuda is valid here")
    assert main(["run", *TINY, "--device", "cuda", "--out", str(tmp_path / "gpu")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0] == "smoacs: error: device cuda requested but torch sees no CUDA device; use --device cpu (or auto)"
