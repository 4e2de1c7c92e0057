"""Sublattice view of discrete candidates: each design as a host plus substituents, and the sublattice limits check.

A design is described per site group (A, B, X for perovskites; see :mod:`smoacs.design.sublattices`): the group's
most common element is its *host*, every other element a *substituent* with its fraction of the group's sites. The
host formula replaces every site by its group's host (``CsPbI3``); the description adds the substituents,
``"CsPbI3 : Sn 0.22 on B; Br 0.33 on X"``. :func:`describe_designs` computes both once per candidate; result.csv
(``host``, ``design``) and report.md show them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from smoacs.chem.elements import element_index
from smoacs.design.sublattices import SublatticeLimits, count_window
from smoacs.templates.base import SITE_ROLES


@dataclass(frozen=True)
class GroupComposition:
    """One site group of one candidate: its host, its substituents (element, fraction of the group's sites, most
    common first) and its number of sites."""

    name: str
    host: str
    substituents: tuple[tuple[str, float], ...]
    n_sites: int

    @property
    def minority_fraction(self) -> float:
        """Share of the group's sites not held by the host."""
        return float(sum(fraction for _, fraction in self.substituents))


def group_labels(site_roles: np.ndarray) -> np.ndarray:
    """Site group names from site roles (A/B/X; "" for sites without a role): the fallback when a run did not
    record its groups."""
    names = np.array([*SITE_ROLES, ""], dtype=object)
    return names[np.where(np.asarray(site_roles) >= 0, site_roles, len(SITE_ROLES))]


def group_compositions(symbols: Sequence[str], groups: Sequence[str]) -> list[GroupComposition]:
    """The groups of one candidate, in order of first appearance (perovskites: A, B, X). Ties for the host go to the
    lighter element. Sites without a group ("") are their own element's group (nothing on them is a substituent)."""
    members: dict[str, list[str]] = {}
    for symbol, group in zip(symbols, groups, strict=True):
        members.setdefault(str(group) or f"({symbol})", []).append(symbol)
    out = []
    for name, elements in members.items():
        ranked = sorted(Counter(elements).items(), key=lambda item: (-item[1], element_index(item[0])))
        n = len(elements)
        out.append(GroupComposition(name, ranked[0][0], tuple((e, count / n) for e, count in ranked[1:]), n))
    return out


def host_formula(symbols: Sequence[str], groups: Sequence[str], compositions: Sequence[GroupComposition]) -> str:
    """Reduced formula of the cell with every site replaced by its group's host, elements in site-group order
    (A, B, X for perovskites: ``TlMgCl3``, not pymatgen's electronegativity order ``MgTlCl3``)."""
    host = {c.name: c.host for c in compositions}
    counts = Counter(host[str(g) or f"({s})"] for s, g in zip(symbols, groups, strict=True))  # insertion: site order
    divisor = math.gcd(*counts.values())
    return "".join(f"{element}{n // divisor if n // divisor > 1 else ''}" for element, n in counts.items())


def describe(host: str, compositions: Sequence[GroupComposition]) -> str:
    """``"CsPbI3 : Sn 0.22 on B; Br 0.33 on X"`` (the host alone when nothing is substituted)."""
    parts = []
    for group in compositions:
        if group.substituents:
            listed = ", ".join(f"{element} {fraction:.2f}" for element, fraction in group.substituents)
            parts.append(f"{listed} on {group.name}")
    return f"{host} : {'; '.join(parts)}" if parts else host


def describe_designs(
    symbols_per_crystal: Sequence[Sequence[str]], groups_per_crystal: Sequence[Sequence[str]]
) -> tuple[list[str], list[str], list[list[GroupComposition]]]:
    """Host formula, description and group compositions of every candidate (see the module docstring)."""
    hosts, descriptions, compositions = [], [], []
    for symbols, groups in zip(symbols_per_crystal, groups_per_crystal, strict=True):
        groups_of = group_compositions(symbols, groups)
        host = host_formula(symbols, groups, groups_of)
        hosts.append(host)
        descriptions.append(describe(host, groups_of))
        compositions.append(groups_of)
    return hosts, descriptions, compositions


def composition_check(
    compositions: Sequence[Sequence[GroupComposition]], limits: Mapping[str, SublatticeLimits]
) -> tuple[np.ndarray, list[str]]:
    """Whether every candidate meets the sublattice limits, and why not (``""`` when it does).

    Per limited group: at most ``max_species`` distinct elements, only ``allowed`` elements, and the number of
    minority sites within the window's integer range (as the design space rounds it, :func:`count_window`).
    Reasons: ``"B: 3 elements (Pb, Sn, Ge) > max 2"``, ``"X: Br not allowed (Cl, I)"``, ``"B: minority 0.30 outside
    [0.00, 0.25]"``, joined with ``"; "``.
    """
    ok = np.ones(len(compositions), dtype=bool)
    reasons = []
    for i, groups in enumerate(compositions):
        problems = []
        for group in groups:
            limit = limits.get(group.name)
            if limit is None:
                continue
            elements = [group.host, *(e for e, _ in group.substituents)]
            if limit.max_species is not None and len(elements) > limit.max_species:
                problems.append(f"{group.name}: {len(elements)} elements ({', '.join(elements)}) > max {limit.max_species}")
            foreign = [e for e in elements if limit.allowed and e not in limit.allowed]
            if foreign:
                problems.append(f"{group.name}: {', '.join(foreign)} not allowed ({', '.join(limit.allowed)})")
            if limit.fraction is not None:
                low, high = count_window(limit.fraction, np.array([group.n_sites]))
                minority = round(group.minority_fraction * group.n_sites)
                if not low[0] <= minority <= high[0]:
                    lo, hi = limit.fraction
                    problems.append(f"{group.name}: minority {group.minority_fraction:.2f} outside [{lo:.2f}, {hi:.2f}]")
        ok[i] = not problems
        reasons.append("; ".join(problems))
    return ok, reasons


__all__ = ["GroupComposition", "composition_check", "describe", "describe_designs", "group_compositions", "group_labels"]
