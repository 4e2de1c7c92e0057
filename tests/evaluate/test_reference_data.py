"""Reference sets with properties: built-in declarations, user CSV declarations, unit and theory errors."""

from __future__ import annotations

import csv
import gzip
import io
import math
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

from smoacs.errors import ConfigError
from smoacs.evaluate.matching import reference_set
from smoacs.evaluate.reference_data import (
    BUILTIN_PROPERTIES,
    canonical_theory,
    convert,
    parse_declaration,
    split_spec,
    theory_family,
)


def _cubic(a: str, b: str, x: str, length: float = 3.9) -> Structure:
    frac = [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]]
    return Structure(Lattice.cubic(length), [a, b, x, x, x], frac)


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(buffer.getvalue().encode()))
    else:
        path.write_text(buffer.getvalue())
    return path


def test_declarations_parse() -> None:
    props = parse_declaration("band_gap=eV@gllbsc, tc=K@experiment", "refs")
    assert [(p.name, p.unit, p.theory) for p in props] == [("band_gap", "eV", "GLLB-SC"), ("tc", "K", "experiment")]
    assert split_spec("data/refs.csv:band_gap=eV@PBE") == ("data/refs.csv", "band_gap=eV@PBE")
    assert split_spec("C:/data/refs.csv") == ("C:/data/refs.csv", "")
    assert split_spec("perov5") == ("perov5", "")
    assert canonical_theory(" hse06 ") == "HSE06" and canonical_theory("my DFT") == "my DFT"
    assert theory_family("PBE") == "semilocal" and theory_family("Experiment") == "beyond" and theory_family("x") == "unknown"
    assert convert(2500.0, "meV", "eV") == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("band_gap", "is not COLUMN=UNIT@THEORY"),
        ("band_gap=@PBE", "band_gap has no unit"),
        ("band_gap=eV", "band_gap has no level of theory"),
        ("band_gap=eV@", "band_gap has no level of theory"),
        ("band_gap=ev@PBE", "unknown unit 'ev' for band_gap"),
        ("band_gap=K@PBE", "band_gap is a energy quantity; unit 'K' does not fit"),
        ("tc=eV@experiment", "tc is a temperature quantity"),
        ("band_gap=eV@PBE,band_gap=eV@HSE", "declared twice"),
    ],
)
def test_wrong_or_missing_units_and_theories_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_declaration(text, "reference refs.csv")
    assert "\n" not in str(info.value) and str(info.value).startswith("reference refs.csv")


def test_user_csv_carries_its_declared_properties(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "refs.csv", ["id", "cif", "band_gap", "note"],
                      [["a", str(CifWriter(_cubic("Sr", "Ti", "O"))), 1.5, "x"],
                       ["b", str(CifWriter(_cubic("K", "Mg", "F", 4.0))), "", "y"]])  # fmt: skip
    reference = reference_set(f"{path}:band_gap=eV@PBE")
    assert reference.name == "refs.csv" and reference.ids == ["refs.csv:a", "refs.csv:b"]
    assert [(p.name, p.theory) for p in reference.properties] == [("band_gap", "PBE")]
    assert reference.value(0, "band_gap") == 1.5 and math.isnan(reference.value(1, "band_gap"))  # empty: not known
    assert reference_set(str(path)).properties == ()  # undeclared: a novelty reference only


def test_user_csv_declaration_errors(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "refs.csv", ["id", "cif", "gap"], [["a", str(CifWriter(_cubic("Sr", "Ti", "O"))), "n/a"]])
    with pytest.raises(ConfigError, match="has no column 'band_gap'"):
        reference_set(f"{path}:band_gap=eV@PBE")
    with pytest.raises(ConfigError, match="row 1: gap value 'n/a' is not a number"):
        reference_set(f"{path}:gap=eV@PBE")
    with pytest.raises(ConfigError, match="declares its own properties"):
        reference_set("perov5:band_gap=eV@PBE")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.cif").write_text(str(CifWriter(_cubic("Sr", "Ti", "O"))))
    with pytest.raises(ConfigError, match="for a CSV file with a cif column only"):
        reference_set(f"{tmp_path / 'dir'}:band_gap=eV@PBE")


def test_shipped_sets_carry_castelli_and_jarvis_values() -> None:
    perov5 = reference_set("perov5")
    assert [(p.name, p.unit, p.theory) for p in perov5.properties] == [("band_gap", "eV", "GLLB-SC"),
                                                                      ("heat_of_formation", "eV/atom", "RPBE")]  # fmt: skip
    i = perov5.ids.index("perov5:perov5-000001")
    assert perov5.value(i, "band_gap") == 0.0 and perov5.value(i, "heat_of_formation") == pytest.approx(1.1968)
    gaps = perov5.values["band_gap"]
    assert all(math.isfinite(g) for g in gaps) and 0.02 < sum(g > 0 for g in gaps) / len(gaps) < 0.06  # ~4 % gapped
    supercon = reference_set("supercon")
    assert supercon.properties == BUILTIN_PROPERTIES["supercon"]
    assert all(t >= 0 for t in supercon.values["tc"]) and max(supercon.values["tc"]) > 10  # K, sign restored


def test_builtin_csv_from_a_data_directory_reads_its_columns(tmp_path: Path) -> None:
    _write_csv(tmp_path / "supercon_mini.csv.gz", ["", "material_id", "cif", "prop"],
               [[0, "JVASP-1", str(CifWriter(_cubic("Nb", "Ti", "N"))), -3.8]])  # fmt: skip
    supercon = reference_set("supercon", data_dir=tmp_path)
    assert supercon.value(0, "tc") == pytest.approx(3.8)  # the CDVAE CSV stores −Tc
    _write_csv(tmp_path / "perov5_mini.csv.gz", ["", "material_id", "cif"], [[0, "7", str(CifWriter(_cubic("Sr", "Ti", "O")))]])
    assert math.isnan(reference_set("perov5", data_dir=tmp_path).value(0, "band_gap"))  # column absent: no value
