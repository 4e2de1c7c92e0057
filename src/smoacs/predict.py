"""``smoacs predict``: run registered predictors on structure files and write one CSV row per structure.

Pure functions do the work (:func:`collect_files`, :func:`read_structures`, :func:`predict_structures`,
:func:`predict_files`, :func:`write_csv`); :func:`add_predict_parser` wires them to an argparse subcommand.

Predictor specs are registry names with optional ``:key=value`` options, e.g. ``megnet-mf-band-gap:fidelity=exp``;
the spec string is the CSV column name. Values are the predictors' reported values for discrete crystals
(``final`` where a predictor has one: e.g. the hard-gated band gap), printed with full float precision (``repr``).
A file that cannot be read, or a structure a predictor rejects, gives a row whose ``error`` column says why; a
structure with overlapping or coincident atoms (two sites closer than 0.5 Å) is predicted but flagged in the
``warning`` column. Directories contribute their structure files only (by name, as the template loader reads
them); the exit status is 1 when no structure could be read at all.
"""

from __future__ import annotations

import argparse
import csv
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import torch

from smoacs.crystal.batch import CrystalBatch
from smoacs.errors import ConfigError, SmoacsError
from smoacs.predictors.registry import load_predictor, parse_spec, split_specs
from smoacs.runtime import DEVICES, resolve_device
from smoacs.templates.files import MIN_SITE_DISTANCE, STRUCTURE_SUFFIXES, is_structure_file, shortest_distance

__all__ = ["PredictionRow", "add_predict_parser", "collect_files", "load_predictors", "parse_spec", "predict_files",
           "predict_structures", "read_structures", "run_predict", "write_csv"]  # fmt: skip

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from smoacs.predictors.base import Predictor


_CIF = {".cif", ".mcif"}
_XYZ = {".xyz", ".extxyz"}
_POSCAR = {".vasp", ".poscar"}


@dataclass
class PredictionRow:
    """One CSV row: a structure (or an unreadable file), its predicted values and any error.

    Attributes:
        label: file path, with ``#k`` appended for the k-th structure of a multi-structure file.
        values: column name → value, in the predictor's unit; missing for failed predictions.
        error: what went wrong, or "" when nothing did.
        warning: why the values may be meaningless (overlapping atoms), or "".
    """

    label: str
    values: dict[str, float] = field(default_factory=dict)
    error: str = ""
    warning: str = ""


def collect_files(paths: Sequence[str | Path]) -> list[Path]:
    """Input files in order: files as given, directories expanded to their visible structure files (by name, see
    :func:`smoacs.templates.files.is_structure_file`; sorted, not recursive). Paths that do not exist are kept, so
    they produce an error row."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                              and is_structure_file(p)))  # fmt: skip
        else:
            out.append(path)
    return out


def _format_of(path: Path) -> str | None:
    suffix = path.suffix.lower()
    name = path.name.upper()
    if suffix in _CIF:
        return "cif"
    if suffix in _XYZ:
        return "extxyz"
    if suffix in _POSCAR or name.startswith(("POSCAR", "CONTCAR")):
        return "poscar"
    return None


def _read_cif(path: Path) -> list[Structure]:
    from pymatgen.io.cif import CifParser

    return CifParser(path).parse_structures(primitive=False)


def _read_poscar(path: Path) -> list[Structure]:
    from pymatgen.io.vasp import Poscar

    return [Poscar.from_file(path).structure]


def _read_extxyz(path: Path) -> list[Structure]:
    try:
        from ase.io import read
        from pymatgen.io.ase import AseAtomsAdaptor
    except ImportError as exc:  # pragma: no cover - ase is optional
        raise SmoacsError("reading extxyz needs the ase package") from exc
    frames = read(path, index=":", format="extxyz")
    if not frames:
        raise SmoacsError("no frames in file")
    for frame in frames:
        if not all(frame.pbc) or abs(frame.cell.volume) < 1e-8:
            raise SmoacsError("extxyz frame is not a 3D-periodic crystal (needs Lattice and pbc)")
    return [AseAtomsAdaptor.get_structure(frame) for frame in frames]


_READERS = {"cif": _read_cif, "poscar": _read_poscar, "extxyz": _read_extxyz}


def read_structures(path: Path) -> list[Structure]:
    """All structures in one CIF, POSCAR/CONTCAR (or ``.vasp``) or extxyz file.

    The format follows the file name; an unrecognised name is tried as POSCAR, then CIF, then extxyz.

    Raises:
        SmoacsError: the file is missing, unreadable, or holds no ordered, periodic structure.
    """
    if not path.is_file():
        raise SmoacsError(f"no such file: {path}")
    kind = _format_of(path)
    order = [kind] if kind is not None else ["poscar", "cif", "extxyz"]
    problems = []
    for fmt in order:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                structures = _READERS[fmt](path)
        except Exception as exc:  # noqa: BLE001 - any parser failure means "not this format"
            problems.append(f"{fmt}: {_describe(exc)}")
            continue
        if structures:
            return structures
        problems.append(f"{fmt}: no structure")
    raise SmoacsError("unreadable structure file (" + "; ".join(problems) + ")")


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def _predict_batch(predictor: Predictor, structures: Sequence[Structure], device: str) -> list[float]:
    crystals = CrystalBatch.from_structures(structures, device=device)
    predictor.rebuild(crystals)
    with torch.no_grad():
        final = getattr(predictor, "final", None)
        values = final(crystals) if callable(final) else predictor(crystals)
    return [float(v) for v in values.detach().double().cpu()]


def _predict_uncertainty(predictor: Predictor, structures: Sequence[Structure], device: str) -> list[float]:
    crystals = CrystalBatch.from_structures(structures, device=device)
    _, std = predictor.predict_with_uncertainty(crystals)  # type: ignore[attr-defined]
    return [float(v) for v in std.detach().double().cpu()]


def predict_structures(
    predictors: dict[str, Predictor],
    items: Sequence[tuple[str, Structure]],
    batch_size: int = 64,
    device: str = "cpu",
    uncertainty: bool = False,
) -> list[PredictionRow]:
    """Predict every labelled structure with every predictor, in batches.

    A batch that fails is retried structure by structure, so one bad structure (e.g. an element a model cannot
    embed) only affects its own row.

    Args:
        predictors: column name → loaded predictor.
        items: (label, structure) pairs.
        batch_size: structures per batch.
        device: torch device.
        uncertainty: add a ``<column>:std`` value for predictors with ``predict_with_uncertainty``.

    Returns:
        One :class:`PredictionRow` per item, in order.
    """
    rows = [PredictionRow(label, warning=overlap_warning(structure)) for label, structure in items]
    structures = [structure for _, structure in items]
    tasks: list[tuple[str, Predictor, object]] = []
    for column, predictor in predictors.items():
        tasks.append((column, predictor, _predict_batch))
        if uncertainty and hasattr(predictor, "predict_with_uncertainty"):
            tasks.append((f"{column}:std", predictor, _predict_uncertainty))
    for column, predictor, run in tasks:
        for start in range(0, len(items), batch_size):
            chunk = range(start, min(start + batch_size, len(items)))
            try:
                values = run(predictor, [structures[i] for i in chunk], device)  # type: ignore[operator]
            except Exception:  # noqa: BLE001 - isolate the failing structure below
                values = None
            if values is not None:
                for i, value in zip(chunk, values, strict=True):
                    rows[i].values[column] = value
                continue
            for i in chunk:
                try:
                    rows[i].values[column] = run(predictor, [structures[i]], device)[0]  # type: ignore[operator]
                except Exception as exc:  # noqa: BLE001 - reported in the row
                    message = f"{column}: {_describe(exc)}"
                    rows[i].error = f"{rows[i].error}; {message}" if rows[i].error else message
    return rows


def overlap_warning(structure: Structure) -> str:
    """"" or a warning that two sites are closer than :data:`~smoacs.templates.files.MIN_SITE_DISTANCE` Å."""
    shortest = shortest_distance(structure)
    if shortest >= MIN_SITE_DISTANCE:
        return ""
    return f"overlapping atoms: two sites {shortest:.3f} Å apart (< {MIN_SITE_DISTANCE} Å); values are not meaningful"


def load_predictors(specs: Iterable[str], device: str = "cpu") -> dict[str, Predictor]:
    """Column name → predictor for each spec (see :func:`smoacs.predictors.registry.read_spec`); raises PredictorError for unknown names."""
    out: dict[str, Predictor] = {}
    for spec in specs:
        out[spec] = load_predictor(spec, device=device)
    return out


def predict_files(
    paths: Sequence[str | Path],
    predictors: dict[str, Predictor],
    batch_size: int = 64,
    device: str = "cpu",
    uncertainty: bool = False,
) -> list[PredictionRow]:
    """Rows for every structure in ``paths`` (files or directories); unreadable files give an error row."""
    rows: list[PredictionRow | None] = []
    items: list[tuple[str, Structure]] = []
    slots: list[int] = []
    for path in collect_files(paths):
        try:
            structures = read_structures(path)
        except SmoacsError as exc:
            rows.append(PredictionRow(str(path), error=str(exc)))
            continue
        for k, structure in enumerate(structures):
            label = str(path) if len(structures) == 1 else f"{path}#{k}"
            items.append((label, structure))
            slots.append(len(rows))
            rows.append(None)
    for slot, row in zip(slots, predict_structures(predictors, items, batch_size, device, uncertainty), strict=True):
        rows[slot] = row
    return [row for row in rows if row is not None]


def write_csv(stream: IO[str], columns: Sequence[str], rows: Iterable[PredictionRow]) -> None:
    """Write ``file,<columns...>,error,warning`` and one line per row; floats use ``repr`` (round-trip precision)."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(["file", *columns, "error", "warning"])
    for row in rows:
        cells = [repr(row.values[c]) if c in row.values else "" for c in columns]
        writer.writerow([row.label, *cells, row.error, row.warning])


def _columns(predictors: dict[str, Predictor], uncertainty: bool) -> list[str]:
    columns = []
    for column, predictor in predictors.items():
        columns.append(column)
        if uncertainty and hasattr(predictor, "predict_with_uncertainty"):
            columns.append(f"{column}:std")
    return columns


def run_predict(args: argparse.Namespace) -> int:
    """Handler of ``smoacs predict``: CSV to stdout; returns 0, or 1 when no structure could be read.

    Unusable arguments (unknown predictors, an unavailable device) raise :class:`SmoacsError`, which the CLI prints
    as ``smoacs: error: …`` (exit 2). Rows with errors do not change the exit status unless every row failed to read.
    """
    for group in args.predictor:
        if not split_specs(group):
            raise ConfigError(f"--predictor {group!r} names no predictor (e.g. -p cgcnn-band-gap; `smoacs predictors` lists them)")
    specs = [spec for group in args.predictor for spec in split_specs(group)]
    device = str(resolve_device(args.device))
    predictors = load_predictors(specs, device)
    files = collect_files(args.files)
    if not files:
        raise ConfigError(f"no structure files ({', '.join(STRUCTURE_SUFFIXES)}, POSCAR, CONTCAR) in {' '.join(args.files)}")
    rows = predict_files(files, predictors, args.batch_size, device, args.uncertainty)
    write_csv(sys.stdout, _columns(predictors, args.uncertainty), rows)
    flagged = [row.label for row in rows if row.warning]
    if flagged:
        print(f"smoacs: warning: {len(flagged)} structure(s) with overlapping atoms: {', '.join(flagged[:5])}", file=sys.stderr)
    if not any(row.values for row in rows):
        print("smoacs: error: no structure could be read or predicted (see the error column)", file=sys.stderr)
        return 1
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {value}")
    return value


def add_predict_parser(
    subparsers: argparse._SubParsersAction, parents: Sequence[argparse.ArgumentParser] = ()
) -> argparse.ArgumentParser:
    """Register the ``predict`` subcommand (handler in ``func``) on an argparse subparsers object."""
    parser = subparsers.add_parser(
        "predict",
        parents=list(parents),
        help="predict properties of structure files (CSV to stdout)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "--predictor", "-p", action="append", required=True, metavar="NAME[,NAME...]",
        help="registered predictor(s), comma-separated or repeated; options as NAME:key=value "
        "(e.g. megnet-mf-band-gap:fidelity=exp)",
    )  # fmt: skip
    parser.add_argument("files", nargs="+", metavar="FILE", help="CIF, POSCAR or extxyz files, or directories")
    parser.add_argument("--batch-size", type=_positive, default=64, help="structures per batch (default 64)")
    parser.add_argument("--device", default="cpu", choices=DEVICES, help="torch device (default cpu; auto: CUDA when available)")
    parser.add_argument(
        "--uncertainty", action="store_true", help="add NAME:std columns for predictors that report a spread"
    )
    parser.set_defaults(func=run_predict)
    return parser
