"""Known values in a finished run: `smoacs run` writes the columns, `smoacs evaluate --reference CSV:…` fills them."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

from smoacs.cli import main
from smoacs.evaluate.rerun import evaluate_run
from smoacs.physics.settings import PhysicsSettings
from smoacs.presets import build_config
from smoacs.runner import RunResult, run


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    # 16 candidates: the planted reference below needs two successes of different formulas, and which candidates
    # succeed after 20 steps moves with float-rounding changes in the predictors (benchmarks/README.md, issue 15).
    config = build_config("perovskite-bandgap", 2.0, str(tmp_path_factory.mktemp("known") / "run"))
    optimizer = replace(config.optimizer, steps=20, copy_mutate_steps=(10,), rebuild_every=5)
    config = config.with_overrides(
        candidates=16, batch_size=4, seed=0, device="cpu", optimizer=optimizer, physics=PhysicsSettings(potential="none")
    )
    result = run(config, progress=False)
    assert result.successes, "the fixture run needs at least one success"
    return result


def test_a_run_writes_the_reference_columns_and_summary(tiny_run: RunResult) -> None:
    header = list(_read(tiny_run.out_dir / "result.csv")[0])
    for column in ("reference_id", "reference_match", "band_gap_reference", "band_gap_reference_theory",
                   "band_gap_reference_ok", "formation_energy_reference", "formation_energy_reference_ok", "tc_reference"):
        assert column in header  # perov5 carries the gap and heat of formation, supercon Tc  # fmt: skip
    summary = _read(tiny_run.out_dir / "result_summary.csv")[0]
    assert {"n_success_known", "n_success_known_structure", "band_gap_reference_agreement"} <= set(summary)
    assert "What the reference sets already know" in (tiny_run.out_dir / "report.md").read_text()


def _planted_reference(tiny_run: RunResult, tmp_path: Path) -> tuple[Path, dict, dict]:
    """A user CSV: the first success's own CIF (band gap 0, a metal) and, for the second success's formula, a
    structure of the same composition that no StructureMatcher would fit (band gap 2.05 eV)."""
    first = tiny_run.successes[0]
    second = next(row for row in tiny_run.successes if row["formula"] != first["formula"])  # the fixture has one
    species = [site.specie.symbol for site in Structure.from_file(second["cif"])]
    rng = np.random.default_rng(0)
    other = Structure(Lattice.orthorhombic(5.1, 7.3, 9.7), species, rng.random((len(species), 3)))
    path = tmp_path / "dft.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "cif", "band_gap"])
        writer.writerow(["m1", str(first["cif"]), "0.0"])
        writer.writerow(["m2", str(CifWriter(other)), "2050"])
    return path, first, second


def test_evaluate_with_a_declared_csv_matches_by_structure_and_by_composition(tiny_run: RunResult, tmp_path: Path) -> None:
    path, first, second = _planted_reference(tiny_run, tmp_path)
    result = evaluate_run(tiny_run.out_dir, references=[f"{path}:band_gap=meV@PBE"], device="cpu", write=True)
    by_id = {row["id"]: row for row in result.rows}
    a, b = by_id[first["id"]], by_id[second["id"]]
    assert (a["reference_id"], a["reference_match"]) == ("dft.csv:m1", "structure")
    assert a["band_gap_reference"] == 0.0 and a["band_gap_reference_theory"] == "PBE" and a["band_gap_reference_ok"] is False
    assert (b["reference_id"], b["reference_match"]) == ("dft.csv:m2", "composition")
    assert b["band_gap_reference"] == pytest.approx(2.05) and b["band_gap_reference_ok"] is True  # 2 ± 0.2 eV, same theory
    assert b["novel"] is True  # composition only: still novel
    summary = result.summary
    assert summary["n_success_known"] == 2 and summary["n_success_known_structure"] == 1
    assert summary["band_gap_reference_contradicted"] == 1 and summary["band_gap_reference_confirmed"] == 1
    report = (tiny_run.out_dir / "report.md").read_text()
    assert "1 of 2 successes with a PBE band gap are metals in PBE (gap 0 eV)." in report
    written = _read(tiny_run.out_dir / "evaluation.csv")
    assert {r["reference_match"] for r in written} >= {"structure", "composition"}


def test_evaluate_cli_rejects_a_wrong_unit_in_one_line(tiny_run: RunResult, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    path, _, _ = _planted_reference(tiny_run, tmp_path)
    assert main(["evaluate", str(tiny_run.out_dir), "--reference", f"{path}:band_gap=K@PBE", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "band_gap is a energy quantity; unit 'K' does not fit" in err[0]
    assert main(["evaluate", str(tiny_run.out_dir), "--reference", f"{path}:band_gap=eV", "--device", "cpu"]) == 2
    assert "band_gap has no level of theory" in capsys.readouterr().err


def test_config_file_declares_references_and_scope(tmp_path: Path) -> None:
    from smoacs.config import RunConfig
    from smoacs.errors import ConfigError

    data = build_config("perovskite-bandgap", 2.5, str(tmp_path / "r")).to_dict()
    data["evaluation"]["references"] = ["perov5", "refs.csv:band_gap=eV@PBE"]
    data["evaluation"]["known_values"] = "all"
    config = RunConfig.from_dict(data)
    assert config.evaluation.references == ("perov5", "refs.csv:band_gap=eV@PBE") and config.evaluation.known_values == "all"
    data["evaluation"]["known_values"] = "some"
    with pytest.raises(ConfigError, match="evaluation.known_values must be 'successes' or 'all'"):
        RunConfig.from_dict(data)
