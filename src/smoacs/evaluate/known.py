"""What DFT (or experiment) already knows about a candidate: reference values of matched reference entries.

Used by ``smoacs run`` (per mini-batch, after :func:`smoacs.evaluate.matching.annotate_matching`) and by
``smoacs evaluate RUN_DIR --reference …`` alike (:func:`known_values` builds the :class:`KnownValues` of a run,
:meth:`KnownValues.annotate` fills the rows). Definitions (docs/KNOWN_VALUES.md):

* Which rows: successes (``evaluation.known_values: successes``, the default) or every candidate (``all``).
* Match, strongest first, against the reference sets that carry property values
  (:data:`smoacs.evaluate.reference_data.BUILTIN_PROPERTIES` or a user declaration):
  ``structure`` — pymatgen ``StructureMatcher`` (default tolerances) against entries of the same reduced formula,
  on the structure the verdict is about (the relaxed cell when the run relaxes; it is the ``cif`` column);
  ``composition`` — no structure matches, but an entry has the same reduced formula (weaker: another arrangement or
  cell of the same elements). The first entry in set order wins. ``reference_id`` names it, ``reference_match``
  says how it matched.
* Columns per reported property ``P`` (a run property a reference property measures — same name, or an alias such as
  heat of formation for ``formation_energy`` — or else the reference property's own name): ``P_reference`` (in the
  run's unit), ``P_reference_theory``, and, when the run has a criterion on ``P``, ``P_reference_ok``: True when the
  criterion holds on the reference value for every value the run's theory could give for it (the mapping of
  :func:`reference_interval`), False when it holds for none, "" when the mapping cannot decide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from smoacs.errors import ConfigError
from smoacs.evaluate.matching import ReferenceSet, find_structure_match, formula_key
from smoacs.evaluate.reference_data import (
    ALIASES,
    JARVIS_TC,
    PROPERTY_DIMENSIONS,
    canonical_theory,
    check_unit,
    convert,
    theory_family,
)
from smoacs.objectives.terms import Objective

Scope = Literal["successes", "all"]
SCOPES: tuple[Scope, ...] = ("successes", "all")
Verdict = bool | Literal[""]

#: Band-gap mapping between theory families: the run's gap lies within [lo·g, hi·g] of a reference gap g.
#: Gap-corrected (GLLB-SC, HSE, GW, mBJ) and measured gaps exceed semi-local (PBE) Kohn–Sham gaps; deliberately wide
#: bounds, so that a verdict is given only where any plausible correction agrees (not a fit). A zero gap from a
#: gap-corrected method or experiment maps to a PBE metal exactly (0·[lo, hi]); a PBE zero gap to [0, ∞).
GAP_RATIOS: dict[tuple[str, str], tuple[float, float]] = {
    ("beyond", "semilocal"): (0.4, 1.0),
    ("semilocal", "beyond"): (1.0, 2.5),
    ("beyond", "beyond"): (0.7, 1.4),
}
#: Energies per atom (formation energy, heat of formation) from another theory or other elemental references:
#: ± this many eV/atom.
ENERGY_TOLERANCE = 0.2
#: Level of theory of the shipped predictors' training labels, by name prefix (the first match wins; the
#: multi-fidelity MEGNet gap takes its ``fidelity`` option). Other predictors (user models): unknown → no mapping.
PREDICTOR_THEORIES: tuple[tuple[str, str], ...] = (
    ("cgcnn-perov5-", "RPBE"),
    ("cgcnn-supercon-", JARVIS_TC),
    ("crystalformer-supercon-", JARVIS_TC),
    ("cgcnn-", "PBE"),
    ("megnet-", "PBE"),
    ("chgnet", "PBE"),
)
FIDELITY_THEORIES = {"pbe": "PBE", "gllb": "GLLB-SC", "hse": "HSE", "exp": "experiment"}


def predictor_theory(name: str) -> str:
    """Level of theory of predictor ``name``'s training labels (``""`` when unknown)."""
    if name.startswith("megnet-mf-band-gap"):
        _, _, options = name.partition(":")
        fidelity = dict(o.split("=", 1) for o in options.split(",") if "=" in o).get("fidelity", "pbe")
        return FIDELITY_THEORIES.get(fidelity, "")
    return next((theory for prefix, theory in PREDICTOR_THEORIES if name.startswith(prefix)), "")


def reference_interval(prop: str, value: float, reference_theory: str, run_theory: str) -> tuple[float, float]:
    """The values the run's theory could give where the reference (in ``reference_theory``) gives ``value``.

    Same theory, or either unknown: ``(value, value)``. Band gaps: :data:`GAP_RATIOS` between theory families.
    Energies per atom: ± :data:`ENERGY_TOLERANCE`. Other properties: no mapping (``(value, value)``).
    """
    ref, run = canonical_theory(reference_theory), canonical_theory(run_theory)
    if not ref or not run or ref == run:
        return value, value
    if prop == "band_gap":
        families = theory_family(ref), theory_family(run)
        if families not in GAP_RATIOS:
            return value, value
        if value <= 0.0 and families[0] == "semilocal":
            return 0.0, math.inf
        lo, hi = GAP_RATIOS[families]
        return lo * value, hi * value
    if PROPERTY_DIMENSIONS.get(prop) == "energy/atom":
        return value - ENERGY_TOLERANCE, value + ENERGY_TOLERANCE
    return value, value


def criterion_bounds(objective: Objective) -> tuple[float, float] | None:
    """The interval of values the objective's evaluation criterion accepts (None: no criterion)."""
    kind = objective.kind
    if kind == "window":
        return objective.target - objective.eval_margin, objective.target + objective.eval_margin  # type: ignore[union-attr]
    if kind == "range":
        return objective.low, objective.high  # type: ignore[union-attr]
    threshold = getattr(objective, "threshold", None)
    if threshold is None:
        return None
    return (-math.inf, threshold) if kind in ("below", "minimize") else (threshold, math.inf)


def verdict(objective: Objective, interval: tuple[float, float]) -> Verdict:
    """True if the criterion holds on the whole interval, False if nowhere on it, "" if on part of it."""
    lo, hi = interval
    if lo == hi:
        return bool(objective.satisfied({objective.key: torch.tensor([lo], dtype=torch.float64)})[0])
    bounds = criterion_bounds(objective)
    if bounds is None:
        return ""
    a, b = bounds
    if a <= lo and hi <= b:
        return True
    if hi < a or lo > b:
        return False
    return ""


@dataclass(frozen=True)
class KnownProperty:
    """A property reference values are reported for.

    Attributes:
        column: the column prefix (a run property, or a reference property no run property measures).
        unit: unit of ``<column>_reference`` (the run's unit when it is a run property).
        theory: level of theory of the run's predictor ("" if unknown or not a run property).
        criterion: the run's objective on it (None: no ``_ok`` column).
    """

    column: str
    unit: str
    theory: str = ""
    criterion: Objective | None = None


def _serves(reference_property: str, column: str) -> bool:
    return reference_property == column or column in ALIASES.get(reference_property, ())


@dataclass
class KnownValues:
    """The reference-value columns of a run and how to fill them (:func:`known_values` builds one).

    Attributes:
        properties: the reported properties, in column order.
        scope: ``successes`` (default) or ``all`` candidates.
    """

    properties: list[KnownProperty] = field(default_factory=list)
    scope: Scope = "successes"

    @property
    def columns(self) -> list[str]:
        """The columns :meth:`annotate` adds (after the matching columns)."""
        out: list[str] = []
        for p in self.properties:
            out += [f"{p.column}_reference", f"{p.column}_reference_theory"]
            out += [f"{p.column}_reference_ok"] if p.criterion is not None else []
        return out

    def annotate(self, rows: Sequence[dict[str, Any]], structures: Sequence[Any], references: Sequence[ReferenceSet]) -> None:
        """Fill the columns in place; updates ``reference_id`` / ``reference_match`` of rows matched here.

        Rows already matched by structure (``reference_match == "structure"``, from the novelty check) reuse that
        match when its set carries values; else (and for non-successes with ``scope="all"``) the sets with values
        are searched by structure, then by composition."""
        carrying = [r for r in references if r.properties]
        by_id = {ident: (r, i) for r in reversed(carrying) for i, ident in enumerate(r.ids)}
        for row, structure in zip(rows, structures, strict=True):
            row.update(dict.fromkeys(self.columns, ""))
            if not self.properties or (self.scope == "successes" and not row["success"]):
                continue
            found = self._match(row, structure, carrying, by_id)
            if found is None:
                continue
            (reference, i), kind = found
            row.update(reference_id=reference.ids[i], reference_match=kind)
            for prop in self.properties:
                row.update(self._values(prop, reference, i))

    def _match(
        self, row: dict[str, Any], structure: Any, carrying: list[ReferenceSet], by_id: Mapping[str, tuple[ReferenceSet, int]]
    ) -> tuple[tuple[ReferenceSet, int], str] | None:  # noqa: ANN401
        if row.get("reference_match") == "structure" and row.get("reference_id") in by_id:
            return by_id[row["reference_id"]], "structure"
        if row.get("reference_match") != "structure" and not row["success"]:  # not compared by the novelty check
            hit = find_structure_match(structure, carrying)
            if hit is not None:
                return hit, "structure"
        formula = formula_key(structure)
        names = [p.column for p in self.properties]
        for reference in carrying:
            served = [r.name for r in reference.properties if any(_serves(r.name, c) for c in names)]
            for i in reference.candidates(formula):
                if any(math.isfinite(reference.value(i, name)) for name in served):
                    return (reference, i), "composition"
        return None

    @staticmethod
    def _values(prop: KnownProperty, reference: ReferenceSet, i: int) -> dict[str, Any]:
        source = next((r for r in reference.properties if _serves(r.name, prop.column)), None)
        if source is None or not math.isfinite(reference.value(i, source.name)):
            return {}
        value = convert(reference.value(i, source.name), source.unit, prop.unit)
        out: dict[str, Any] = {f"{prop.column}_reference": value, f"{prop.column}_reference_theory": source.theory}
        if prop.criterion is not None:
            interval = reference_interval(prop.column, value, source.theory, prop.theory)
            out[f"{prop.column}_reference_ok"] = verdict(prop.criterion, interval)
        return out


def known_values(
    references: Sequence[ReferenceSet],
    predictors: Mapping[str, str],
    units: Mapping[str, str],
    objectives: Sequence[Objective],
    scope: str = "successes",
) -> KnownValues:
    """The :class:`KnownValues` of a run.

    Args:
        references: the run's reference sets (those with properties contribute columns).
        predictors: run property → predictor name (its theory: :func:`predictor_theory`).
        units: run property → unit (``PredictorInfo.unit``).
        objectives: the run's objectives (criteria for ``_ok``).
        scope: ``successes`` or ``all``.

    Raises:
        ConfigError: an unknown scope, or a reference property whose unit cannot be expressed in the run's unit.
    """
    if scope not in SCOPES:
        raise ConfigError(f"evaluation.known_values must be one of {', '.join(SCOPES)}, got {scope!r}")
    criteria = {o.key: o for o in objectives if criterion_bounds(o) is not None}
    out: dict[str, KnownProperty] = {}
    for reference in references:
        for rp in reference.properties:
            targets = [p for p in predictors if _serves(rp.name, p)]
            for column in targets:
                unit = units.get(column) or rp.unit
                if unit in ("", None):
                    unit = rp.unit
                check_unit(column, rp.unit, f"reference {reference.name}")
                try:
                    convert(0.0, rp.unit, unit)
                except (ConfigError, KeyError):
                    raise ConfigError(
                        f"reference {reference.name}: {rp.name} is in {rp.unit}, which cannot be expressed in the run's "
                        f"{column} unit {unit}"
                    ) from None
                out.setdefault(column, KnownProperty(column, unit, predictor_theory(predictors[column]), criteria.get(column)))
            if not targets:
                out.setdefault(rp.name, KnownProperty(rp.name, rp.unit))
    ordered = [out[p] for p in predictors if p in out] + [v for k, v in out.items() if k not in predictors]
    return KnownValues(ordered, scope)  # type: ignore[arg-type]


# ---- summary and wording ---------------------------------------------------------------------------------------------
def _has(value: Any) -> bool:  # noqa: ANN401
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _reported(rows: Sequence[dict[str, Any]]) -> list[str]:
    return [k[: -len("_reference")] for k in (rows[0] if rows else {}) if k.endswith("_reference")]


def known_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Summary keys over successes (empty dict when the rows carry no reference-value columns).

    ``n_success_known`` (successes with at least one reference value), ``n_success_known_structure`` /
    ``_composition`` (how they matched), ``n_success_known_contradicted`` (a reference value contradicts one of
    their criteria); per property ``P`` with a criterion: ``P_reference_n`` (successes with a value),
    ``P_reference_confirmed`` / ``_contradicted`` / ``_undecided`` (``P_reference_ok`` True / False / ""), and
    ``P_reference_agreement`` = confirmed / with a value ("" when none has one).
    """
    props = _reported(rows)
    if not props:
        return {}
    successes = [row for row in rows if row["success"]]
    known = [row for row in successes if any(_has(row.get(f"{p}_reference")) for p in props)]
    judged = [p for p in props if f"{p}_reference_ok" in rows[0]]
    out: dict[str, Any] = {
        "n_success_known": len(known),
        "n_success_known_structure": sum(row["reference_match"] == "structure" for row in known),
        "n_success_known_composition": sum(row["reference_match"] == "composition" for row in known),
        "n_success_known_contradicted": sum(any(row.get(f"{p}_reference_ok") is False for p in judged) for row in known),
    }
    for p in judged:
        valued = [row for row in successes if _has(row.get(f"{p}_reference"))]
        confirmed = sum(row[f"{p}_reference_ok"] is True for row in valued)
        out[f"{p}_reference_n"] = len(valued)
        out[f"{p}_reference_confirmed"] = confirmed
        out[f"{p}_reference_contradicted"] = sum(row[f"{p}_reference_ok"] is False for row in valued)
        out[f"{p}_reference_undecided"] = sum(row[f"{p}_reference_ok"] == "" for row in valued)
        out[f"{p}_reference_agreement"] = confirmed / len(valued) if valued else ""
    return out


def _theories(rows: Sequence[dict[str, Any]], prop: str) -> str:
    names = sorted({str(row[f"{prop}_reference_theory"]) for row in rows if row.get(f"{prop}_reference_theory")})
    return "/".join(names) or "reference"


def known_sentences(rows: Sequence[dict[str, Any]], summary: Mapping[str, Any]) -> list[str]:
    """Plain-language lines for report.md ("3 of 3 successes with a GLLB-SC band_gap are metals in GLLB-SC")."""
    if "n_success_known" not in summary:
        return []
    n_success = summary.get("n_success", 0)
    lines = [
        f"{summary['n_success_known']} of {n_success} successes match a reference entry with a known value "
        f"({summary['n_success_known_structure']} by structure, {summary['n_success_known_composition']} by "
        f"composition only — same formula, structure not matched); for "
        f"{summary['n_success_known_contradicted']} of them a known value contradicts a success criterion."
    ]
    successes = [row for row in rows if row["success"]]
    for key in summary:
        if not key.endswith("_reference_n"):
            continue
        prop = key[: -len("_reference_n")]
        n = summary[key]
        if not n:
            continue
        valued = [row for row in successes if _has(row.get(f"{prop}_reference"))]
        theory = _theories(valued, prop)
        text = (f"{prop}: {n} of {n_success} successes have a reference value ({theory}); it confirms the criterion for "
                f"{summary[f'{prop}_reference_confirmed']}, contradicts it for {summary[f'{prop}_reference_contradicted']}"
                f" and cannot decide for {summary[f'{prop}_reference_undecided']} (theory mapping: docs/KNOWN_VALUES.md).")  # fmt: skip
        lines.append(text)
        if prop == "band_gap":
            metals = sum(row[f"{prop}_reference"] <= 0.0 for row in valued)
            if metals:
                lines.append(f"{metals} of {n} successes with a {theory} band gap are metals in {theory} (gap 0 eV).")
    return lines


__all__ = [
    "ENERGY_TOLERANCE",
    "GAP_RATIOS",
    "KnownProperty",
    "KnownValues",
    "SCOPES",
    "criterion_bounds",
    "known_sentences",
    "known_summary",
    "known_values",
    "predictor_theory",
    "reference_interval",
    "verdict",
]
