"""What reference sets know: their property values, with units and levels of theory declared in one place.

* :data:`BUILTIN_PROPERTIES` — the properties the built-in sets carry (``perov5``: Castelli et al.'s band gap and
  heat of formation; ``supercon``: JARVIS-DFT's Tc), each with its unit and level of theory.
* User tables: a CSV(.gz) with a ``cif`` column plus property columns, declared in the reference spec
  ``PATH:COLUMN=UNIT@THEORY[,COLUMN=UNIT@THEORY…]`` (``my.csv:band_gap=eV@PBE,tc=K@experiment``). The column name
  is the property name (``band_gap``, ``formation_energy``, ``tc`` …: the run's property names, so that a run's
  criterion can be applied to it). Unit and theory are both required; the unit must be one of :data:`UNITS` and fit
  the property's dimension (:data:`PROPERTY_DIMENSIONS`); a wrong or missing one is a one-line ``ConfigError``.
  Without a declaration a CSV is a novelty reference only (as before).
* :func:`convert` — a value from one unit to another of the same dimension (``meV`` → ``eV``).
* :func:`canonical_theory` / :func:`theory_family` — theory names (``gllbsc`` → ``GLLB-SC``) and their family
  (``semilocal``: PBE-like GGA/LDA; ``beyond``: GLLB-SC, HSE, mBJ, GW, experiment), used by
  :mod:`smoacs.evaluate.known` to map criteria between theories.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from smoacs.errors import ConfigError

Dimension = Literal["energy", "energy/atom", "temperature", "pressure", "dimensionless"]
TheoryFamily = Literal["semilocal", "beyond", "unknown"]

#: Accepted units: unit → (dimension, factor to the dimension's base unit: eV, eV/atom, K, GPa, 1).
UNITS: dict[str, tuple[Dimension, float]] = {
    "eV": ("energy", 1.0),
    "meV": ("energy", 1e-3),
    "eV/atom": ("energy/atom", 1.0),
    "meV/atom": ("energy/atom", 1e-3),
    "K": ("temperature", 1.0),
    "GPa": ("pressure", 1.0),
    "-": ("dimensionless", 1.0),
}
#: Dimension of the property names smoacs knows (other names accept any unit of :data:`UNITS`).
PROPERTY_DIMENSIONS: dict[str, Dimension] = {
    "band_gap": "energy",
    "efermi": "energy",
    "formation_energy": "energy/atom",
    "heat_of_formation": "energy/atom",
    "e_hull": "energy/atom",
    "energy_per_atom": "energy/atom",
    "total_energy": "energy/atom",
    "tc": "temperature",
    "bulk_modulus": "pressure",
    "shear_modulus": "pressure",
    "poisson_ratio": "dimensionless",
}
#: Reference properties that check another run property too (same quantity, other name): heat of formation per
#: atom ↔ formation energy per atom (both relative to elemental reference energies).
ALIASES: dict[str, tuple[str, ...]] = {"heat_of_formation": ("formation_energy",), "formation_energy": ("heat_of_formation",)}

#: Spelling → canonical theory name (matched case-insensitively); other names are kept as given.
THEORY_NAMES = {
    "pbe": "PBE", "pbe+u": "PBE+U", "gga": "GGA", "gga+u": "GGA+U", "pbesol": "PBEsol", "rpbe": "RPBE", "lda": "LDA",
    "optb88vdw": "OptB88vdW", "r2scan": "r2SCAN", "scan": "SCAN", "gllb-sc": "GLLB-SC", "gllbsc": "GLLB-SC",
    "gllb": "GLLB-SC", "hse": "HSE", "hse06": "HSE06", "mbj": "mBJ", "tbmbj": "TBmBJ", "gw": "GW",
    "experiment": "experiment", "exp": "experiment", "expt": "experiment", "experimental": "experiment",
}  # fmt: skip
#: Semi-local (and meta-GGA) functionals: band gaps of this family are the Kohn–Sham gaps that underestimate.
SEMILOCAL = frozenset({"PBE", "PBE+U", "GGA", "GGA+U", "PBEsol", "RPBE", "LDA", "OptB88vdW", "r2SCAN", "SCAN"})
#: Gap-corrected methods and measurement.
BEYOND = frozenset({"GLLB-SC", "HSE", "HSE06", "mBJ", "TBmBJ", "GW", "experiment"})
#: Theory of the JARVIS-DFT BCS superconductor Tc (Choudhary & Garrity 2022: DFT electron–phonon coupling, Tc from
#: the McMillan–Allen–Dynes formula).
JARVIS_TC = "DFT electron-phonon (JARVIS)"


@dataclass(frozen=True)
class ReferenceProperty:
    """One property a reference set carries.

    Attributes:
        name: property name (``band_gap``, ``heat_of_formation``, ``tc`` or a user column).
        unit: one of :data:`UNITS`.
        theory: level of theory (``GLLB-SC``, ``PBE``, ``experiment`` …).
        record: key in a shipped library record (built-in sets).
        column: CSV column it is read from (default: ``name``).
        column_scale: factor applied to the CSV value (the supercon CSV stores −Tc).
        note: where the value comes from, in words (docs, report).
    """

    name: str
    unit: str
    theory: str
    record: str = ""
    column: str = ""
    column_scale: float = 1.0
    note: str = ""

    @property
    def csv_column(self) -> str:
        """The CSV column holding the values."""
        return self.column or self.name


#: The one place where the built-in sets' properties, units and levels of theory are declared.
BUILTIN_PROPERTIES: dict[str, tuple[ReferenceProperty, ...]] = {
    "perov5": (
        ReferenceProperty(
            "band_gap", "eV", "GLLB-SC", record="ind_gap", column="ind_gap",
            note="Castelli et al. 2012 GLLB-SC gap (the indirect gap, i.e. the fundamental one; 0 = metal)",
        ),
        ReferenceProperty(
            "heat_of_formation", "eV/atom", "RPBE", record="heat_ref", column="heat_ref",
            note="Castelli et al. 2012 heat of formation per atom (CDVAE's heat_ref), from RPBE total energies",
        ),
    ),
    "supercon": (
        ReferenceProperty(
            "tc", "K", JARVIS_TC, record="tc", column="prop", column_scale=-1.0,
            note="JARVIS-DFT BCS Tc (Choudhary & Garrity 2022); the CDVAE CSV stores -Tc",
        ),
    ),
}  # fmt: skip


def canonical_theory(theory: str) -> str:
    """The canonical spelling of a theory name (``gllbsc`` → ``GLLB-SC``); unknown names as given (stripped)."""
    text = theory.strip()
    return THEORY_NAMES.get(text.lower(), text)


def theory_family(theory: str) -> TheoryFamily:
    """``semilocal``, ``beyond`` or ``unknown`` (see :data:`SEMILOCAL`, :data:`BEYOND`)."""
    name = canonical_theory(theory)
    return "semilocal" if name in SEMILOCAL else "beyond" if name in BEYOND else "unknown"


def check_unit(prop: str, unit: str, where: str) -> None:
    """ConfigError unless ``unit`` is known and of ``prop``'s dimension (when smoacs knows the property)."""
    if unit not in UNITS:
        raise ConfigError(f"{where}: unknown unit {unit!r} for {prop}; use one of {', '.join(UNITS)}")
    expected = PROPERTY_DIMENSIONS.get(prop)
    if expected is not None and UNITS[unit][0] != expected:
        options = ", ".join(u for u, (d, _) in UNITS.items() if d == expected)
        raise ConfigError(f"{where}: {prop} is a {expected} quantity; unit {unit!r} does not fit (use {options})")


def convert(value: float, unit: str, to: str) -> float:
    """``value`` in ``unit`` expressed in ``to`` (same dimension; ConfigError otherwise)."""
    (dim_a, fa), (dim_b, fb) = UNITS[unit], UNITS[to]
    if dim_a != dim_b:
        raise ConfigError(f"cannot convert {unit} to {to}")
    return value * fa / fb


def parse_declaration(text: str, where: str) -> tuple[ReferenceProperty, ...]:
    """The properties declared in ``COLUMN=UNIT@THEORY[,COLUMN=UNIT@THEORY…]`` (one-line ConfigError if malformed)."""
    out: list[ReferenceProperty] = []
    for item in text.split(","):
        column, sep, rest = item.strip().partition("=")
        unit, at, theory = rest.partition("@")
        column, unit, theory = column.strip(), unit.strip(), theory.strip()
        if not sep or not column:
            raise ConfigError(f"{where}: property declaration {item.strip()!r} is not COLUMN=UNIT@THEORY (e.g. band_gap=eV@PBE)")
        if not unit:
            raise ConfigError(f"{where}: {column} has no unit; declare it as {column}=UNIT@THEORY (units: {', '.join(UNITS)})")
        if not at or not theory:
            raise ConfigError(f"{where}: {column} has no level of theory; declare it as {column}={unit}@THEORY (e.g. PBE, experiment)")
        check_unit(column, unit, where)
        if any(p.name == column for p in out):
            raise ConfigError(f"{where}: {column} is declared twice")
        out.append(ReferenceProperty(column, unit, canonical_theory(theory), column=column))
    return tuple(out)


def split_spec(spec: str) -> tuple[str, str]:
    """(set name or path, property declaration or "") of a reference spec ``PATH[:COLUMN=UNIT@THEORY,…]``.

    The declaration follows the last ``:`` when the text after it contains ``=`` (so ``C:\\data\\refs.csv`` and
    paths with colons but no declaration stay whole)."""
    head, sep, tail = spec.rpartition(":")
    if sep and "=" in tail and head:
        return head, tail
    return spec, ""


def parse_value(text: str | float | None, prop: ReferenceProperty, where: str) -> float:
    """A stored value as a float in the property's unit (empty or missing → NaN; ConfigError if not a number)."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return math.nan
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {prop.csv_column} value {text!r} is not a number") from None
    return value * prop.column_scale if math.isfinite(value) else math.nan


__all__ = [
    "ALIASES",
    "BUILTIN_PROPERTIES",
    "JARVIS_TC",
    "PROPERTY_DIMENSIONS",
    "UNITS",
    "ReferenceProperty",
    "canonical_theory",
    "check_unit",
    "convert",
    "parse_declaration",
    "parse_value",
    "split_spec",
    "theory_family",
]
