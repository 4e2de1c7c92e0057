"""Structure-level uniqueness and novelty with pymatgen's ``StructureMatcher`` (default tolerances).

Matching is attempted only between structures with the same *reduced formula with species* (``SrTiO3``), so the
cost is the number of same-formula pairs, not all pairs: a 256-candidate run against the ~7,600 perov-5 references
fits each candidate against the handful of references that share its formula. An anonymised formula (``ABC3``)
would put every perovskite in one bucket and is deliberately not used.

Definitions (docs/METHOD_NOTES.md, "Evaluation"):

* duplicates: successes are taken in row order; each is compared with the first member of every earlier group of
  its formula and joins the first group it matches, else starts a new one. ``unique`` is True for the first member
  of each group; ``unique_success_rate`` = groups / successes.
* novelty: a success is novel if it matches no structure of any reference set; ``novel_success_rate`` = novel
  successes / successes.

Reference sets (:func:`load_reference_set`, :func:`reference_set`): ``perov5`` and ``supercon`` (the CDVAE splits,
CSV files with a ``cif`` column), ``prototypes`` (a directory of structure files), or a path — a directory of
CIF/POSCAR files or one CSV(.gz) file with a ``cif`` column. Built-in sets are looked for in the package data
(``smoacs/templates/data/``) and then in ``$SMOACS_REFERENCE_DATA``. CSV references are read lazily: only the
formula of each row is parsed up front (from ``_chemical_formula_sum``), a structure only when a candidate shares
its formula.
"""

from __future__ import annotations

import csv
import gzip
import os
import re
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from smoacs.errors import ConfigError
from smoacs.evaluate.reference_data import BUILTIN_PROPERTIES, ReferenceProperty, parse_declaration, parse_value, split_spec

#: Names of the built-in reference sets, and the file patterns they are read from inside a data directory.
BUILTIN_REFERENCES: dict[str, tuple[str, ...]] = {
    "perov5": ("perov5*.csv.gz", "perov5*.csv", "perov_5*.csv.gz"),
    "supercon": ("supercon*.csv.gz", "supercon*.csv"),
    "prototypes": ("prototypes", "prototypes*.csv.gz", "prototypes*.csv"),
}
#: Built-in sets shipped as template libraries (``smoacs/templates/data``); used unless a data_dir is given.
PACKAGED_REFERENCES = {"perov5": "perov5.json.gz", "supercon": "supercon.json.gz", "prototypes": "aflow_prototypes.json.gz"}
DATA_ENV = "SMOACS_REFERENCE_DATA"
#: The matching columns, placed right after ``success`` in result.csv / evaluation.csv: ``reference_id`` names the
#: matched reference entry, ``reference_match`` how it matched (``structure``, or ``composition`` — set by
#: :mod:`smoacs.evaluate.known` when only the reduced formula of an entry with known values agrees).
MATCH_COLUMNS = ("unique", "duplicate_of", "novel", "reference_id", "reference_match")
_FORMULA_SUM = re.compile(r"_chemical_formula_sum\s+(?:'([^']*)'|\"([^\"]*)\"|(\S+))")


@cache
def matcher() -> Any:  # noqa: ANN401 - pymatgen StructureMatcher
    """pymatgen ``StructureMatcher`` with its default tolerances (ltol 0.2, stol 0.3, angle_tol 5°)."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher()


def formula_key(structure: Any) -> str:  # noqa: ANN401
    """Reduced formula with species (the bucket within which structures are compared)."""
    return structure.composition.reduced_formula


def _reduced(formula: str) -> str:
    from pymatgen.core import Composition

    return Composition(formula).reduced_formula


def _parse_cif(text: str) -> Any:  # noqa: ANN401
    from pymatgen.io.cif import CifParser

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CifParser.from_str(text).parse_structures(primitive=False)[0]


@dataclass
class ReferenceSet:
    """Reference structures keyed by reduced formula, parsed on first use.

    Attributes:
        name: label used in ``reference_match`` (``perov5``, ``templates``, a directory name…).
        ids: identifier of every entry (material id or file name).
        formulas: reduced formula of every entry.
        sources: CIF text or a shipped library record (lazy entries), or a parsed structure, per entry.
        properties: the properties the set carries (units and theory: :mod:`smoacs.evaluate.reference_data`).
        values: property name → value of every entry (NaN: not known), in the property's unit.
    """

    name: str
    ids: list[str] = field(default_factory=list)
    formulas: list[str] = field(default_factory=list)
    sources: list[Any] = field(default_factory=list)
    properties: tuple[ReferenceProperty, ...] = ()
    values: dict[str, list[float]] = field(default_factory=dict)
    _index: dict[str, list[int]] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, ident: str, formula: str, source: Any, values: dict[str, float] | None = None) -> None:  # noqa: ANN401
        """Append an entry (``source``: CIF text or a pymatgen structure; ``values``: its property values)."""
        self.ids.append(ident)
        self.formulas.append(formula)
        self.sources.append(source)
        for prop in self.properties:
            self.values.setdefault(prop.name, []).append((values or {}).get(prop.name, float("nan")))
        self._index = None

    def value(self, i: int, name: str) -> float:
        """Entry ``i``'s value of property ``name`` (NaN when unknown)."""
        return self.values[name][i] if name in self.values else float("nan")

    @classmethod
    def from_structures(cls, name: str, structures: Iterable[Any], ids: Iterable[str] | None = None) -> ReferenceSet:
        """A reference set of already parsed structures."""
        out = cls(name)
        structures = list(structures)
        for ident, structure in zip(ids or (str(i) for i in range(len(structures))), structures, strict=True):
            out.add(ident, formula_key(structure), structure)
        return out

    def structure(self, i: int) -> Any:  # noqa: ANN401
        """Entry ``i`` as a pymatgen structure (parsed and cached on first use)."""
        if isinstance(self.sources[i], str):
            self.sources[i] = _parse_cif(self.sources[i])
        elif isinstance(self.sources[i], dict):  # a record of a shipped template library
            from pymatgen.core import Lattice, Structure

            record = self.sources[i]
            self.sources[i] = Structure(Lattice(record["lattice"]), record["species"], record["frac_coords"])
        return self.sources[i]

    def candidates(self, formula: str) -> list[int]:
        """Indices of the entries with this reduced formula."""
        if self._index is None:
            self._index = {}
            for i, key in enumerate(self.formulas):
                self._index.setdefault(key, []).append(i)
        return self._index.get(formula, [])

    def structures(self) -> list[Any]:
        """Every entry, parsed."""
        return [self.structure(i) for i in range(len(self))]


def package_data_dir() -> Path:
    """``smoacs/templates/data`` inside the installed package (may not exist)."""
    return Path(__file__).resolve().parent.parent / "templates" / "data"


def _data_dirs(data_dir: str | Path | None) -> list[Path]:
    if data_dir is not None:
        return [Path(data_dir)]
    dirs = [package_data_dir()]
    if os.environ.get(DATA_ENV):
        dirs.append(Path(os.environ[DATA_ENV]))
    return dirs


def _read_csv(path: Path, name: str, out: ReferenceSet, declared: bool = False) -> None:
    """Entries of a CSV reference; ``declared``: its properties were declared by the user (their columns must exist;
    a built-in set's CSV without a property column just has no values for it)."""
    opener = gzip.open if path.suffix == ".gz" else open
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "cif" not in reader.fieldnames:
            raise ConfigError(f"reference file {path} has no 'cif' column")
        missing = [p.csv_column for p in out.properties if p.csv_column not in reader.fieldnames]
        if missing and declared:
            raise ConfigError(f"reference file {path} has no column {', '.join(map(repr, missing))} (declared as a property)")
        for number, row in enumerate(reader):
            text = row["cif"] or ""
            ident = row.get("material_id") or row.get("id") or f"{path.name}:{number}"
            where = f"reference file {path} row {number + 1}"
            values = {p.name: parse_value(row.get(p.csv_column), p, where) for p in out.properties}
            if "\n" not in text.strip():  # a path (e.g. another run's result.csv: structures/c00000.cif)
                out.add(f"{name}:{ident}", *_cif_file(path, number, text), values)
                continue
            match = _FORMULA_SUM.search(text)
            if match:
                formula = _reduced(next(g for g in match.groups() if g is not None))
            else:  # no formula line: parse the structure now
                try:
                    structure = _parse_cif(text)
                except Exception as exc:  # noqa: BLE001 - parser errors come in many types
                    raise ConfigError(f"reference file {path} row {number + 1}: unreadable CIF text ({exc})") from None
                formula, text = formula_key(structure), structure
            out.add(f"{name}:{ident}", formula, text, values)


def _cif_file(csv_path: Path, number: int, cell: str) -> tuple[str, Any]:
    """(formula, structure) of a ``cif`` cell that names a file, relative to the CSV's folder (or absolute)."""
    from smoacs.errors import TemplateError
    from smoacs.templates.files import read_structure

    file = Path(cell)
    file = file if file.is_absolute() else csv_path.parent / file
    if not cell or not file.is_file():
        raise ConfigError(
            f"reference file {csv_path} row {number + 1}: the cif column holds neither CIF text nor an existing file "
            f"({cell!r}, looked for {file})"
        )
    try:
        structure = read_structure(file, role="reference")
    except TemplateError as exc:
        raise ConfigError(f"reference file {csv_path} row {number + 1}: {exc}") from None
    return formula_key(structure), structure


def _read_directory(path: Path, name: str, out: ReferenceSet) -> None:
    from smoacs.errors import TemplateError
    from smoacs.templates.files import read_structure, structure_files

    try:
        files = structure_files(path)
    except TemplateError as exc:
        raise ConfigError(f"reference {path}: {exc}") from None
    for file in files:
        try:
            structure = read_structure(file, role="reference")
        except TemplateError as exc:
            raise ConfigError(str(exc)) from None
        out.add(f"{name}:{file.name}", formula_key(structure), structure)


def reference_set(spec: str, data_dir: str | Path | None = None) -> ReferenceSet:
    """The reference set named by ``spec`` (lazy; see the module docstring).

    Args:
        spec: ``perov5``, ``supercon``, ``prototypes``, a directory of CIF/POSCAR files or a CSV(.gz) file with a
            ``cif`` column, optionally followed by property declarations ``:COLUMN=UNIT@THEORY,…``
            (:func:`smoacs.evaluate.reference_data.parse_declaration`). The built-in sets carry the properties of
            :data:`~smoacs.evaluate.reference_data.BUILTIN_PROPERTIES`.
        data_dir: where the built-in sets are looked for (default: package data, then ``$SMOACS_REFERENCE_DATA``).

    Raises:
        ConfigError: unknown spec, missing data, unreadable file, a malformed or misplaced property declaration.
    """
    spec, declaration = split_spec(spec)
    if declaration and spec in BUILTIN_REFERENCES:
        raise ConfigError(f"reference {spec}: a built-in set declares its own properties; drop ':{declaration}'")
    if spec in PACKAGED_REFERENCES and data_dir is None:
        return _packaged_reference(spec)
    if spec in BUILTIN_REFERENCES:
        out = ReferenceSet(spec, properties=BUILTIN_PROPERTIES.get(spec, ()))
        for directory in _data_dirs(data_dir):
            paths = sorted({p for pattern in BUILTIN_REFERENCES[spec] for p in directory.glob(pattern)})
            for path in paths:
                _read_directory(path, spec, out) if path.is_dir() else _read_csv(path, spec, out)
            if paths:
                return out
        where = ", ".join(str(d) for d in _data_dirs(data_dir))
        raise ConfigError(f"reference set {spec!r}: no data found in {where} (set ${DATA_ENV} to a directory holding it)")
    path = Path(spec)
    if not path.exists():
        known = ", ".join(BUILTIN_REFERENCES)
        raise ConfigError(f"unknown reference {spec!r}: not one of {known} and not an existing file or directory")
    properties = parse_declaration(declaration, f"reference {spec}") if declaration else ()
    out = ReferenceSet(path.name or str(path), properties=properties)
    if path.is_file() and path.name.endswith((".csv", ".csv.gz")):
        _read_csv(path, out.name, out, declared=True)
    else:
        if properties:
            raise ConfigError(f"reference {spec}: properties can be declared for a CSV file with a cif column only")
        _read_directory(path, out.name, out)
    return out


def _packaged_reference(spec: str) -> ReferenceSet:
    """A built-in set from the template libraries shipped with smoacs (ordered records only)."""
    from collections import Counter

    from pymatgen.core import Composition

    from smoacs.templates.packaged import read_library

    out = ReferenceSet(spec, properties=BUILTIN_PROPERTIES.get(spec, ()))
    for record in read_library(PACKAGED_REFERENCES[spec]):
        if record.get("ordered", True):
            formula = Composition(Counter(record["species"])).reduced_formula
            values = {p.name: float(record.get(p.record, float("nan"))) for p in out.properties}
            out.add(f"{spec}:{record['name']}", formula, record, values)
    return out


def load_reference_set(spec: str, data_dir: str | Path | None = None) -> list[Any]:
    """Every structure of the reference set ``spec`` (parsed; see :func:`reference_set`)."""
    return reference_set(spec, data_dir).structures()


def available_references(data_dir: str | Path | None = None) -> list[str]:
    """The built-in reference sets whose data is present."""
    names = []
    for name, patterns in BUILTIN_REFERENCES.items():
        if data_dir is None and name in PACKAGED_REFERENCES:
            names.append(name)
        elif any(any(d.glob(pattern)) for d in _data_dirs(data_dir) if d.is_dir() for pattern in patterns):
            names.append(name)
    return names


def _fits(a: Any, b: Any) -> bool:  # noqa: ANN401
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(matcher().fit(a, b))


class Deduplicator:
    """Incremental duplicate grouping: :meth:`add` returns the index of the group's first member, or None if new."""

    def __init__(self) -> None:
        self._groups: dict[str, list[tuple[int, Any]]] = {}
        self.n_added = 0

    def add(self, structure: Any) -> int | None:  # noqa: ANN401
        """Add a structure (numbered in call order); the number of the first member of a matching group, else None."""
        number = self.n_added
        self.n_added += 1
        groups = self._groups.setdefault(formula_key(structure), [])
        for first, representative in groups:
            if _fits(representative, structure):
                return first
        groups.append((number, structure))
        return None


def group_duplicates(structures: Sequence[Any]) -> list[int]:
    """For every structure, the index of the first member of its group (itself if it is the first)."""
    dedup = Deduplicator()
    out = []
    for i, structure in enumerate(structures):
        first = dedup.add(structure)
        out.append(i if first is None else first)
    return out


def find_reference_match(structure: Any, references: Sequence[ReferenceSet]) -> str:  # noqa: ANN401
    """Id (``set:id``) of the first reference structure matching ``structure``, or "" if none does.

    Sets that carry property values are searched first (their match can tell the user a known value); the
    novelty verdict does not depend on the order."""
    found = find_structure_match(structure, references)
    return "" if found is None else found[0].ids[found[1]]


def find_structure_match(structure: Any, references: Sequence[ReferenceSet]) -> tuple[ReferenceSet, int] | None:  # noqa: ANN401
    """(set, entry index) of the first reference structure matching ``structure`` (sets with properties first)."""
    key = formula_key(structure)
    ordered = [r for r in references if r.properties] + [r for r in references if not r.properties]
    for reference in ordered:
        for i in reference.candidates(key):
            if _fits(reference.structure(i), structure):
                return reference, i
    return None


def annotate_matching(
    rows: Sequence[dict[str, Any]],
    structures: Sequence[Any],
    references: Sequence[ReferenceSet],
    dedup: Deduplicator | None = None,
    first_ids: list[str] | None = None,
) -> None:
    """Add ``unique``, ``duplicate_of``, ``novel``, ``reference_id`` and ``reference_match`` to every row (in place).

    Only successes are compared; other rows get ``unique = novel = False`` and empty strings. ``novel`` is "" (not
    assessed) for every row when ``references`` is empty. A matched success gets the matched entry's id
    (``set:id``) in ``reference_id`` and ``structure`` in ``reference_match``. Pass the same ``dedup`` and ``first_ids`` (ids of the
    successes added so far) across mini-batches to group duplicates across the whole run.
    """
    dedup = dedup if dedup is not None else Deduplicator()
    first_ids = first_ids if first_ids is not None else []
    for row, structure in zip(rows, structures, strict=True):
        if not row["success"]:
            row.update(unique=False, duplicate_of="", novel=False if references else "", reference_id="", reference_match="")
            continue
        first = dedup.add(structure)
        first_ids.append(row["id"])
        row["unique"] = first is None
        row["duplicate_of"] = "" if first is None else first_ids[first]
        if references:
            match = find_reference_match(structure, references)
            row.update(novel=not match, reference_id=match, reference_match="structure" if match else "")
        else:
            row.update(novel="", reference_id="", reference_match="")


def insert_after(row: dict[str, Any], key: str, new: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``row`` with ``new`` placed right after ``key`` (for column order)."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if k not in new:
            out[k] = v
        if k == key:
            out.update(new)
    out.update({k: v for k, v in new.items() if k not in out})
    return out


class RowAnnotator(Protocol):
    """Adds columns to matched rows (:class:`smoacs.evaluate.known.KnownValues`)."""

    @property
    def columns(self) -> list[str]: ...  # noqa: D102

    def annotate(self, rows: Sequence[dict[str, Any]], structures: Sequence[Any], references: Sequence[ReferenceSet]) -> None: ...  # noqa: D102


def match_and_order(
    rows: Sequence[dict[str, Any]],
    structures: Sequence[Any],
    references: Sequence[ReferenceSet],
    dedup: Deduplicator | None = None,
    first_ids: list[str] | None = None,
    known: RowAnnotator | None = None,
) -> list[dict[str, Any]]:
    """Rows with uniqueness and novelty (:func:`annotate_matching`), the reference values of ``known``
    (:class:`smoacs.evaluate.known.KnownValues`; optional), and the result column order (the :data:`MATCH_COLUMNS`
    and ``known``'s columns right after ``success``); shared by ``smoacs run`` (per mini-batch, with a run-wide
    ``dedup``) and ``smoacs evaluate`` (all rows at once)."""
    annotate_matching(rows, structures, references, dedup, first_ids)
    columns = list(MATCH_COLUMNS)
    if known is not None:
        known.annotate(rows, structures, references)
        columns += known.columns
    return [insert_after(row, "success", {key: row[key] for key in columns}) for row in rows]


def describe_references(references: Sequence[ReferenceSet]) -> str:
    """``perov5 (7572); templates (8)`` — for summaries and reports."""
    return "; ".join(f"{r.name} ({len(r)})" for r in references)


__all__ = [
    "BUILTIN_REFERENCES",
    "Deduplicator",
    "ReferenceSet",
    "annotate_matching",
    "available_references",
    "describe_references",
    "find_reference_match",
    "find_structure_match",
    "formula_key",
    "group_duplicates",
    "load_reference_set",
    "reference_set",
]
