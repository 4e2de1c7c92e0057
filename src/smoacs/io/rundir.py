"""The run directory: the one place that knows its layout, writes it as mini-batches finish, and reads it back.

Layout (all paths relative to the directory)::

    run.json                 configuration, versions, predictors, timings, status
    result.csv               one row per candidate (appended per mini-batch; rewritten after a relaxation check)
    result_summary.csv       one summary row (rewritten after every mini-batch)
    result.npz               per-candidate and per-site arrays, ``history_<key>`` arrays [steps, candidates]
    structures/<id>.cif      each candidate (CIF labels ``<El><index>`` keep the run's site order)
    poscar/<id>.vasp         the same, as VASP POSCAR
    relaxed/<id>.cif         each candidate relaxed (physics on, or a relaxation check)
    report.md, history.png   human-readable report and loss/property curves
    evaluation.csv, evaluation_summary.csv   written by ``smoacs evaluate`` (the run's own files stay untouched)

Safety rules (:meth:`RunDirectory.prepare`): a new run never writes into a directory that already holds run files
(any of :data:`RUN_FILES`) unless it continues that run (``resume``) or replaces it (``overwrite``, which first deletes
the old run files, and only those); an output path that is a file, or a directory that cannot be written, is a
one-line error. :func:`unique_path` gives the default output name of a run: the base name, else ``<base>-2``,
``<base>-3``, … — the first that holds no run files (deterministic for a given disk state).

Reading back: :meth:`RunDirectory.read_structure` (the CIF reader), :meth:`RunDirectory.read_finished` (the finished
mini-batches of an interrupted run, see :mod:`smoacs.io.resume`), :meth:`RunDirectory.read_run` (what
``smoacs evaluate`` needs).
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from smoacs.errors import ConfigError
from smoacs.io.writers import csv_text, to_cif, to_poscar

RUN_JSON = "run.json"
RESULT_CSV = "result.csv"
SUMMARY_CSV = "result_summary.csv"
RESULT_NPZ = "result.npz"
STRUCTURES_DIR = "structures"
POSCAR_DIR = "poscar"
RELAXED_DIR = "relaxed"
REPORT_MD = "report.md"
HISTORY_PNG = "history.png"
EVALUATION_CSV = "evaluation.csv"
EVALUATION_SUMMARY_CSV = "evaluation_summary.csv"

#: Everything a run (or ``smoacs evaluate``) writes into its directory: files, then folders.
RUN_FILES = (RUN_JSON, RESULT_CSV, SUMMARY_CSV, RESULT_NPZ, REPORT_MD, HISTORY_PNG, EVALUATION_CSV, EVALUATION_SUMMARY_CSV)
RUN_FOLDERS = (STRUCTURES_DIR, POSCAR_DIR, RELAXED_DIR)
PrepareMode = Literal["new", "resume", "overwrite"]

_INT = re.compile(r"-?\d+")
_LABEL = re.compile(r"(\d+)$")
#: result.csv columns that stay text when read back (everything else is parsed as bool, int or float).
TEXT_COLUMNS = frozenset({"id", "template", "formula", "oxidation_states", "pattern_oxidation_states", "duplicate_of",
                          "reference_id", "reference_match", "copied_from", "quarantined", "cif", "poscar", "design_cif",
                          "relaxed_cif", "relax_status", "relax_reason",
                          "host", "design", "composition_reason"})  # fmt: skip
#: result.npz arrays ``smoacs evaluate`` needs.
EVALUATE_ARRAYS = ("template_frac_coords", "coord_bound", "site_roles", "n_atoms")


@dataclass
class FinishedBatches:
    """The finished part of a run directory (see :meth:`RunDirectory.read_finished`).

    Attributes:
        n_batches: finished mini-batches (the first ``n_batches`` of the run).
        columns: result.csv's header.
        rows: the finished rows, typed as the runner produces them (bool, int, float, str).
        structures: their structures, read back from the CIFs.
        arrays: result.npz's non-history arrays, trimmed to the finished candidates.
        histories: result.npz's ``history_*`` arrays (without the prefix), trimmed likewise.
        meta: the previous run.json.
    """

    n_batches: int
    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    structures: list[Any] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    histories: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunFiles:
    """What ``smoacs evaluate`` reads of a finished run: run.json's config, result.csv as text, result.npz."""

    config: dict[str, Any]
    rows: list[dict[str, str]]
    arrays: Any


def parse_value(column: str, text: str) -> Any:  # noqa: ANN401
    """A result.csv cell typed as the runner produced it (text columns and empty cells stay text)."""
    if column in TEXT_COLUMNS or column.endswith("_reference_theory") or text == "":
        return text
    if text in ("True", "False"):
        return text == "True"
    if _INT.fullmatch(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def read_cif(path: Path, n_atoms: int) -> Any:  # noqa: ANN401
    """A written candidate with its sites in the run's order (CifParser regroups them; labels keep the index)."""
    from pymatgen.core import Structure
    from pymatgen.io.cif import CifParser

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = CifParser(path).parse_structures(primitive=False)[0]
    except Exception as exc:  # noqa: BLE001 - parser errors come in many types
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot read {path}: {reason}") from None
    labels = [_LABEL.search(site.label or "") for site in structure]
    order = [int(m.group(1)) for m in labels if m]
    if len(order) == len(structure) and sorted(order) == list(range(len(structure))):
        sites = sorted(zip(order, structure, strict=True), key=lambda pair: pair[0])
        structure = Structure(structure.lattice, [s.specie for _, s in sites], [s.frac_coords for _, s in sites])
    if len(structure) != n_atoms:
        raise ConfigError(f"{path} has {len(structure)} sites, result.csv says {n_atoms}")
    return structure


class RunDirectory:
    """A run directory: its file layout, incremental writing, and reading finished results back.

    Args:
        path: the directory (created on the first write).
        columns: result.csv's header when continuing a directory (resume), else None (set by the first append).
    """

    def __init__(self, path: str | Path, columns: Sequence[str] | None = None) -> None:
        self.path = Path(path)
        self.columns: list[str] | None = list(columns) if columns else None

    # ---- layout -----------------------------------------------------------------------------------------------
    @property
    def out_dir(self) -> Path:
        """The directory (same as :attr:`path`)."""
        return self.path

    @property
    def run_json(self) -> Path:
        """Path of run.json."""
        return self.path / RUN_JSON

    @property
    def result_csv(self) -> Path:
        """Path of result.csv."""
        return self.path / RESULT_CSV

    @property
    def summary_csv(self) -> Path:
        """Path of result_summary.csv."""
        return self.path / SUMMARY_CSV

    @property
    def result_npz(self) -> Path:
        """Path of result.npz."""
        return self.path / RESULT_NPZ

    @property
    def report_md(self) -> Path:
        """Path of report.md."""
        return self.path / REPORT_MD

    @property
    def history_png(self) -> Path:
        """Path of history.png."""
        return self.path / HISTORY_PNG

    @staticmethod
    def cif_name(ident: str) -> str:
        """Relative path of a candidate's CIF (the ``cif`` column)."""
        return f"{STRUCTURES_DIR}/{ident}.cif"

    @staticmethod
    def poscar_name(ident: str) -> str:
        """Relative path of a candidate's POSCAR (the ``poscar`` column)."""
        return f"{POSCAR_DIR}/{ident}.vasp"

    def relaxed_cif(self, ident: str) -> Path:
        """Path of a relaxed success's CIF (its folder is created)."""
        (self.path / RELAXED_DIR).mkdir(parents=True, exist_ok=True)
        return self.path / RELAXED_DIR / f"{ident}.cif"

    def run_files(self) -> list[str]:
        """Names of the run files and folders present in the directory (empty when it does not exist)."""
        if not self.path.is_dir():
            return []
        return [name for name in (*RUN_FILES, *RUN_FOLDERS) if (self.path / name).exists()]

    # ---- writing ----------------------------------------------------------------------------------------------
    def prepare(self, mode: PrepareMode = "new") -> RunDirectory:
        """Check that a run may write here and make the directory (see the module's safety rules); returns self.

        ``new``: refuse a directory holding run files; ``resume``: it must hold a run; ``overwrite``: delete the old
        run files first. Errors are :class:`ConfigError` (one line): the path is a file, the directory holds
        another run, it cannot be created or written.
        """
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"output path {self.path} is a file, not a directory; choose another --out")
        present = self.run_files()
        if mode == "new" and present:
            raise ConfigError(
                f"{self.path} already holds a run ({', '.join(present[:3])}); choose another --out, continue it "
                f"with --resume {self.path}, or replace it with --overwrite"
            )
        if mode == "resume" and RUN_JSON not in present:
            raise ConfigError(f"cannot resume: {self.path} has no {RUN_JSON} (not a smoacs run directory)")
        if mode == "overwrite":
            self.clear()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.path):
                pass
        except OSError as exc:
            raise ConfigError(f"cannot write to output directory {self.path}: {exc.strerror or exc}") from None
        return self

    def discard_if_empty(self) -> None:
        """Remove the directory when it holds nothing (a run refused while it was set up leaves no trace)."""
        with contextlib.suppress(OSError):
            self.path.rmdir()

    def clear(self) -> None:
        """Delete the run files and folders (:data:`RUN_FILES`, :data:`RUN_FOLDERS`); other files stay."""
        for name in self.run_files():
            target = self.path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()

    def create(self) -> RunDirectory:
        """Create the directory and its structure folders; returns self."""
        (self.path / STRUCTURES_DIR).mkdir(parents=True, exist_ok=True)
        (self.path / POSCAR_DIR).mkdir(parents=True, exist_ok=True)
        return self

    @staticmethod
    def relaxed_name(ident: str) -> str:
        """Relative path of a candidate's relaxed CIF."""
        return f"{RELAXED_DIR}/{ident}.cif"

    def append(
        self,
        rows: list[dict[str, Any]],
        structures: Sequence[Any],
        relaxed: Sequence[Any] | None = None,
        judged: Literal["design", "relaxed"] = "design",
    ) -> None:
        """Write the structures of a finished mini-batch, add their file columns, append the rows.

        ``structures`` are the designs (``structures/<id>.cif``); ``relaxed`` (optional) their relaxed cells
        (``relaxed/<id>.cif``). The ``cif`` column and the POSCAR are the structure that ``success`` judges
        (``judged``); the other one is named in ``design_cif`` or ``relaxed_cif``.
        """
        self.create()
        if relaxed is not None:
            (self.path / RELAXED_DIR).mkdir(parents=True, exist_ok=True)
        for i, (row, structure) in enumerate(zip(rows, structures, strict=True)):
            design_cif = self.cif_name(row["id"])
            (self.path / design_cif).write_text(to_cif(structure))
            judged_structure, cif = structure, design_cif
            if relaxed is not None:
                relaxed_cif = self.relaxed_name(row["id"])
                (self.path / relaxed_cif).write_text(to_cif(relaxed[i]))
                if judged == "relaxed":
                    judged_structure, cif = relaxed[i], relaxed_cif
                    row["design_cif"] = design_cif
                else:
                    row["relaxed_cif"] = relaxed_cif
            poscar = self.poscar_name(row["id"])
            (self.path / poscar).write_text(to_poscar(judged_structure, f"{row['id']} {row['formula']}"))
            row["cif"] = cif
            row["poscar"] = poscar
        header = self.columns is None
        if self.columns is None:
            self.columns = list(rows[0])
        with self.result_csv.open("a" if not header else "w", encoding="utf-8") as handle:
            handle.write(csv_text(rows, self.columns, header))

    def write_relaxed(self, rows: list[dict[str, Any]], structures: Sequence[Any]) -> None:
        """Write ``relaxed/<id>.cif`` of re-checked rows (``smoacs evaluate --relax`` / ``smoacs relax``)."""
        (self.path / RELAXED_DIR).mkdir(parents=True, exist_ok=True)
        for row, structure in zip(rows, structures, strict=True):
            (self.path / self.relaxed_name(row["id"])).write_text(to_cif(structure))

    def rewrite(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite result.csv whole, with every column any row has (e.g. after the relaxation check)."""
        columns = list(self.columns or [])
        columns += [key for row in rows for key in row if key not in columns]
        self.columns = list(dict.fromkeys(columns))
        self.result_csv.write_text(csv_text(rows, self.columns, header=True), encoding="utf-8")

    def write_summary(self, summary: dict[str, Any]) -> None:
        """(Re)write result_summary.csv, one row."""
        self.summary_csv.write_text(csv_text([summary], list(summary), header=True))

    def write_npz(self, arrays: dict[str, np.ndarray]) -> None:
        """(Re)write result.npz."""
        np.savez_compressed(self.result_npz, **arrays)

    def write_json(self, name: str, payload: dict[str, Any]) -> None:
        """Write a JSON file (sorted keys, indented)."""
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / name).write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")

    def write_meta(self, meta: dict[str, Any]) -> None:
        """(Re)write run.json."""
        self.write_json(RUN_JSON, meta)

    def write_evaluation(self, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
        """Write ``smoacs evaluate``'s evaluation.csv and evaluation_summary.csv."""
        columns = list(rows[0]) if rows else []
        (self.path / EVALUATION_CSV).write_text(csv_text(rows, columns, header=True))
        (self.path / EVALUATION_SUMMARY_CSV).write_text(csv_text([summary], list(summary), header=True))

    # ---- reading ----------------------------------------------------------------------------------------------
    def _check_is_directory(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{self.path} is a file; give a run directory (the folder holding run.json)")
        if not self.path.is_dir():
            raise ConfigError(f"run directory {self.path} does not exist")

    def read_meta(self) -> dict[str, Any]:
        """run.json; ConfigError (one line) when the directory or the file is missing or unreadable."""
        self._check_is_directory()
        try:
            meta = json.loads(self.run_json.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{self.path} has no run.json (not a smoacs run directory)") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{self.run_json} is unreadable: {exc}") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
            raise ConfigError(f"{self.run_json} is unreadable: no config section")
        return meta

    def read_design(self, row: dict[str, Any], n_atoms: int) -> Any:  # noqa: ANN401
        """The unrelaxed design of a result row (``structures/<id>.cif``), sites in run order."""
        return read_cif(self.path / self.cif_name(row["id"]), n_atoms)

    def read_structure(self, row: dict[str, Any], n_atoms: int) -> Any:  # noqa: ANN401
        """The structure of a result row (its ``cif`` column, else ``structures/<id>.cif``), sites in run order."""
        return read_cif(self.path / (row.get("cif") or self.cif_name(row["id"])), n_atoms)

    def read_rows(self) -> list[dict[str, str]]:
        """result.csv as text rows; an empty file or a row with the wrong number of cells (a truncated or edited file)
        is a one-line :class:`ConfigError` naming the line."""
        with self.result_csv.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            columns = next(reader, None)
            if not columns:
                raise ConfigError(f"{self.result_csv} is empty (no header line)")
            rows = []
            for line in reader:
                if len(line) != len(columns):
                    raise ConfigError(
                        f"{self.result_csv} line {reader.line_num} has {len(line)} cells, the header {len(columns)} "
                        "(truncated or edited?)"
                    )
                rows.append(dict(zip(columns, line, strict=True)))
        return rows

    def read_run(self) -> RunFiles:
        """run.json's config, result.csv (text) and result.npz of a finished run (for ``smoacs evaluate``)."""
        self._check_is_directory()
        missing = [n for n in (RUN_JSON, RESULT_CSV, RESULT_NPZ) if not (self.path / n).is_file()]
        if missing:
            raise ConfigError(f"{self.path} is not a smoacs run directory (missing {', '.join(missing)})")
        try:
            config = json.loads(self.run_json.read_text())["config"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(f"{self.path}/run.json is unreadable: {exc}") from None
        rows = self.read_rows()
        arrays = load_arrays(self.result_npz)
        needed = [k for k in EVALUATE_ARRAYS if k not in arrays]
        if needed:
            raise ConfigError(f"{self.path}/result.npz lacks {', '.join(needed)} (written by an older smoacs); re-run it")
        return RunFiles(config, rows, arrays)

    def read_finished(self, batch_ids: list[list[str]], meta: dict[str, Any]) -> FinishedBatches:
        """The finished mini-batches (``batch_ids``: the ids of every mini-batch of the run, in order).

        A mini-batch counts as finished when its rows are in result.csv *and* its candidates in result.npz, in run
        order. result.csv is trimmed to the finished rows (an unfinished tail is dropped and will be recomputed).
        """
        if not self.result_csv.is_file() or not self.result_npz.is_file():
            return FinishedBatches(0, [], meta=meta)
        with self.result_csv.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            columns = next(reader, [])
            raw = [line for line in reader if len(line) == len(columns)]
        loaded = load_arrays(self.result_npz)
        csv_ids = [line[columns.index("id")] for line in raw] if "id" in columns else []
        npz_ids = [str(i) for i in loaded.get("id", [])]
        done, n_rows = 0, 0
        for ids in batch_ids:
            end = n_rows + len(ids)
            if csv_ids[n_rows:end] != ids or npz_ids[n_rows:end] != ids:
                break
            done, n_rows = done + 1, end
        if done == 0:
            return FinishedBatches(0, [], meta=meta)  # result.csv is rewritten from scratch
        state = FinishedBatches(done, columns, meta=meta)
        state.arrays, state.histories = _trim_arrays(loaded, n_rows, self.result_npz)
        kept_text = csv_text([dict(zip(columns, line, strict=True)) for line in raw[:n_rows]], columns, header=True)
        if self.result_csv.read_text(encoding="utf-8") != kept_text:
            self.result_csv.write_text(kept_text, encoding="utf-8")  # drop unfinished rows
        for line in raw[:n_rows]:
            row = {column: parse_value(column, text) for column, text in zip(columns, line, strict=True)}
            state.rows.append(row)
            state.structures.append(self.read_structure(row, row["n_atoms"]))
        return state


def unique_path(base: str | Path) -> Path:
    """``base`` if it holds no run files, else the first of ``<base>-2``, ``<base>-3``, … that holds none."""
    base = Path(base)
    candidate, counter = base, 1
    while RunDirectory(candidate).run_files() or (candidate.exists() and not candidate.is_dir()):
        counter += 1
        candidate = base.with_name(f"{base.name}-{counter}")
    return candidate


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read in full; a truncated or corrupt file is a one-line :class:`ConfigError`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{path} is unreadable (truncated or corrupt: {exc}); re-run the run to rewrite it") from None


def _trim_arrays(
    loaded: dict[str, np.ndarray], n_rows: int, path: Path
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """result.npz's arrays cut to the first ``n_rows`` candidates (and their sites): (arrays, histories)."""
    n_cand = len(loaded.get("id", []))
    n_atoms = loaded["n_atoms"]
    total_atoms, kept_atoms = int(n_atoms.sum()), int(n_atoms[:n_rows].sum())
    arrays, histories = {}, {}
    for key, value in loaded.items():
        if key.startswith("history_"):
            histories[key[len("history_") :]] = value[:, :n_rows]
        elif value.shape[:1] == (n_cand,):
            arrays[key] = value[:n_rows]
        elif value.shape[:1] == (total_atoms,):
            arrays[key] = value[:kept_atoms]
        else:
            raise ConfigError(f"cannot resume: {path} array {key} has an unexpected shape {value.shape}")
    return arrays, histories
