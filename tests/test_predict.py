"""`smoacs predict`: reading files, batching predictors, CSV output, error rows."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.vasp import Poscar

from smoacs.cli import main
from smoacs.errors import PredictorError
from smoacs.predict import (
    collect_files,
    load_predictors,
    parse_spec,
    predict_files,
    predict_structures,
    write_csv,
)

REFERENCE = Path(__file__).parent / "files" / "megnet_reference.json.gz"


@pytest.fixture(scope="module")
def records() -> dict[str, dict]:
    """Reference MEGNet records by name prefix (NaCl, SrTiO3, ...)."""
    with gzip.open(REFERENCE, "rt") as handle:
        return {r["name"].split("_")[0]: r for r in json.load(handle)["structures"]}


@pytest.fixture
def folder(tmp_path: Path, records: dict[str, dict]) -> Path:
    """A directory with a CIF (NaCl), a POSCAR (SrTiO3) and a garbage file."""
    (tmp_path / "nacl.cif").write_text(records["NaCl"]["cif"])
    srtio3 = Structure.from_str(records["SrTiO3"]["cif"], fmt="cif")
    (tmp_path / "POSCAR").write_text(Poscar(srtio3).get_str())
    (tmp_path / "notes.txt").write_text("not a crystal\n1 2 3\n")
    return tmp_path


def _table(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_parse_spec() -> None:
    assert parse_spec("megnet-efermi") == ("megnet-efermi", {})
    assert parse_spec("megnet-mf-band-gap:fidelity=exp:smooth_cutoff=0.5") == (
        "megnet-mf-band-gap",
        {"fidelity": "exp", "smooth_cutoff": 0.5},
    )
    with pytest.raises(PredictorError):
        parse_spec("megnet-efermi:oops")


def test_collect_files_expands_directories_to_structure_files(folder: Path) -> None:
    (folder / "history.png").write_bytes(b"\x89PNG")  # a run directory's other outputs are not read
    (folder / "result.csv").write_text("id\n")
    assert [p.name for p in collect_files([folder])] == ["POSCAR", "nacl.cif"]
    assert [p.name for p in collect_files([folder / "notes.txt"])] == ["notes.txt"]  # a file given by name is kept


def test_cli_predict_directory(folder: Path, records: dict[str, dict], capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["predict", "--predictor", "megnet-formation-energy,cgcnn-formation-energy", str(folder)])
    assert status == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "file,megnet-formation-energy,cgcnn-formation-energy,error,warning"
    rows = {Path(r["file"]).name: r for r in _table(out)}
    assert set(rows) == {"POSCAR", "nacl.cif"}
    key = "mp-2019.4.1/formation_energy.hdf5"
    assert float(rows["nacl.cif"]["megnet-formation-energy"]) == pytest.approx(
        records["NaCl"]["predictions"][key], abs=1e-4
    )
    assert float(rows["POSCAR"]["megnet-formation-energy"]) == pytest.approx(
        records["SrTiO3"]["predictions"][key], abs=1e-4
    )
    assert float(rows["POSCAR"]["cgcnn-formation-energy"]) < 0
    assert rows["nacl.cif"]["error"] == "" and rows["POSCAR"]["error"] == ""
    assert rows["nacl.cif"]["warning"] == ""


def test_cli_predict_unreadable_file_row_and_exit_status(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["predict", "-p", "cgcnn-formation-energy", str(folder / "notes.txt")])
    captured = capsys.readouterr()
    (row,) = _table(captured.out)
    assert row["cgcnn-formation-energy"] == "" and "unreadable" in row["error"]
    assert status == 1 and "smoacs: error: no structure could be read" in captured.err


def test_cli_predict_flags_overlapping_atoms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    coincident = Structure(Lattice.cubic(4.0), ["Na", "Cl", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0.52]])
    coincident.to(filename=str(tmp_path / "bad.cif"))
    assert main(["predict", "-p", "cgcnn-formation-energy", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    (row,) = _table(captured.out)
    assert "overlapping atoms: two sites 0.080 Å apart" in row["warning"] and row["cgcnn-formation-energy"] != ""
    assert "smoacs: warning: 1 structure(s) with overlapping atoms" in captured.err


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--device", "gpu"], "invalid choice: 'gpu'"), (["--batch-size", "0"], "must be ≥ 1, got 0"),
     (["--device", "cuda"], "device cuda requested but torch sees no CUDA device"), ([], "no structure files"),
     (["-p", ""], "--predictor '' names no predictor")],
    ids=["gpu", "batch-size-0", "cuda-absent", "empty-directory", "empty-predictor"],
)  # fmt: skip
def test_cli_predict_argument_errors_are_one_line(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    if flags == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("a CUDA device is present: --device cuda is valid here")
    (tmp_path / "notes.txt").write_text("nothing\n")
    try:
        code = main(["predict", "-p", "cgcnn-formation-energy", *flags, str(tmp_path)])
    except SystemExit as exc:  # argparse errors
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("smoacs: error:") and message in err[0], err


def test_cli_unknown_predictor(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "-p", "no-such-model", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("smoacs: error:") and "unknown predictor" in err


def test_full_precision_and_uncertainty_column(folder: Path) -> None:
    predictors = load_predictors(["megnet-mf-band-gap:fidelity=hse"])
    rows = predict_files([folder / "nacl.cif"], predictors, uncertainty=True)
    stream = io.StringIO()
    write_csv(stream, ["megnet-mf-band-gap:fidelity=hse", "megnet-mf-band-gap:fidelity=hse:std"], rows)
    (row,) = _table(stream.getvalue())
    assert float(row["megnet-mf-band-gap:fidelity=hse"]) == rows[0].values["megnet-mf-band-gap:fidelity=hse"]
    assert float(row["megnet-mf-band-gap:fidelity=hse:std"]) == pytest.approx(0.2713128, abs=1e-4)


def test_bad_structure_only_spoils_its_own_row(records: dict[str, dict]) -> None:
    good = Structure.from_str(records["MgO"]["cif"], fmt="cif")
    disordered = Structure(Lattice.cubic(4.0), [{"Na": 0.5, "K": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    predictors = load_predictors(["megnet-efermi"])
    rows = predict_structures(predictors, [("good", good), ("bad", disordered), ("good2", good)])
    assert [r.label for r in rows] == ["good", "bad", "good2"]
    expected = records["MgO"]["predictions"]["mp-2019.4.1/efermi.hdf5"]
    assert rows[0].values["megnet-efermi"] == pytest.approx(expected, abs=1e-4)
    assert rows[2].values == rows[0].values and rows[0].error == ""
    assert rows[1].values == {} and "disordered" in rows[1].error
