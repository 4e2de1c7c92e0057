"""Sublattice limits: the supercells a chemist would make (a host plus a few substituents per sublattice).

A *site group* is a sublattice of a template: ``A``, ``B`` or ``X`` for ABX3 perovskites (the template's site
roles), else the template's own element on that site (the ``O`` sites of a ZnO prototype form group ``O``). A
:class:`SublatticeLimits` per group name may cap the number of distinct elements, restrict the allowed elements and
set a window on the minority fraction (the share of the group's sites *not* held by its most common element).

This module holds the settings, the group labels of templates and the vectorised helpers the design space uses to
enforce the limits; the parametrisation itself is in :mod:`smoacs.design.space`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from smoacs.chem.elements import ELEMENTS
from smoacs.errors import ConfigError
from smoacs.templates.base import SITE_ROLES, Template

#: Largest lower bound of a minority-fraction window: above ½ the "minority" would be the majority.
MAX_LOWER_FRACTION = 0.5


@dataclass(frozen=True)
class SublatticeLimits:
    """Limits on one site group (sublattice) of every template that has it.

    Attributes:
        max_species: at most this many distinct elements on the group's sites (None: no limit, every site chooses
            its own element as without limits). With a limit the group shares ``max_species`` element choices (a
            host and substituents) and each site picks one of them (:mod:`smoacs.design.space`).
        allowed: the elements the group may hold (symbols); empty: every element allowed at the site's oxidation
            state. Oxidation patterns under which no allowed element fits a site are dropped.
        fraction: (min, max) window on the minority fraction = 1 − (sites of the most common element) / (sites of
            the group); needs ``max_species`` ≥ 2, and min ≤ 0.5. None: any fraction.
    """

    max_species: int | None = None
    allowed: tuple[str, ...] = ()
    fraction: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.max_species is not None and self.max_species < 1:
            raise ValueError(f"max_species must be ≥ 1, got {self.max_species}")
        unknown = [symbol for symbol in self.allowed if symbol not in ELEMENTS]
        if unknown:
            raise ValueError(f"allowed: unknown element(s) {', '.join(map(repr, unknown))} (symbols H … Cf)")
        if len(set(self.allowed)) != len(self.allowed):
            raise ValueError(f"allowed: an element is listed twice in {', '.join(self.allowed)}")
        if self.fraction is not None:
            lo, hi = self.fraction
            if not 0.0 <= lo <= hi <= 1.0:
                raise ValueError(f"fraction must satisfy 0 ≤ min ≤ max ≤ 1, got ({lo:g}, {hi:g})")
            if lo > MAX_LOWER_FRACTION:
                raise ValueError(f"fraction min must be ≤ {MAX_LOWER_FRACTION:g} (a minority), got {lo:g}")
            if self.max_species is None or self.max_species < 2:
                raise ValueError("a fraction window needs max_species ≥ 2 (a host and at least one substituent)")
            if lo > 0 and self.allowed and len(self.allowed) < 2:
                raise ValueError(f"fraction min {lo:g} > 0 needs at least two allowed elements, got {self.allowed[0]}")

    @property
    def shared(self) -> bool:
        """Whether the group's sites share a limited set of element choices (``max_species`` is set)."""
        return self.max_species is not None


def site_group_labels(template: Template) -> list[str]:
    """The group (sublattice) name of every site: A/B/X for perovskites, else the template's own element ("" if
    the template has no species, e.g. generated general templates)."""
    if template.is_perovskite:
        return [SITE_ROLES[int(role)] for role in template.site_roles]
    if template.species:
        return list(template.species)
    return [""] * template.n_atoms


def check_group_names(templates: Sequence[Template], limits: Mapping[str, SublatticeLimits]) -> None:
    """ConfigError when a limited group name occurs in none of the templates (a typo such as ``b`` for ``B``)."""
    if not limits:
        return
    present = sorted({label for t in templates for label in site_group_labels(t) if label})
    missing = [name for name in limits if name not in present]
    if missing:
        shown = ", ".join(present[:12]) + (", …" if len(present) > 12 else "")
        raise ConfigError(
            f"sublattice limits name site group(s) {', '.join(missing)} that no template has; site groups of this "
            f"run: {shown} (perovskites: A, B, X; general templates: their own elements)"
        )


def count_window(fraction: tuple[float, float] | None, n_sites: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Allowed numbers of minority sites ``[lo, hi]`` (integers, ⌈min·n⌉ and ⌊max·n⌋) for groups of ``n_sites``
    sites; no window: ``[0, n]``. A window is feasible when ``lo ≤ min(hi, ⌊n/2⌋)`` (a minority holds at most half)."""
    n_sites = np.asarray(n_sites, dtype=np.int64)
    if fraction is None:
        return np.zeros_like(n_sites), n_sites.copy()  # no window: any count
    lo, hi = fraction
    low = np.ceil(lo * n_sites - 1e-9).astype(np.int64)
    high = np.floor(hi * n_sites + 1e-9).astype(np.int64)
    return low, high


def rank_within(groups: Tensor, score: Tensor, candidate: Tensor) -> Tensor:
    """Rank of every candidate among the candidates of its group, 0 for the highest score (ties: lower index
    first); non-candidates get a rank larger than any group. All ``[n]``; ``groups`` are non-negative integers."""
    big = int(groups.max().item()) + 1 if len(groups) else 1
    keyed = torch.where(candidate, groups, torch.full_like(groups, big))
    order = torch.argsort(score, descending=True, stable=True)
    order = order[torch.argsort(keyed[order], stable=True)]
    ordered = keyed[order]
    first = torch.searchsorted(ordered, ordered, side="left")
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order), device=order.device) - first
    return torch.where(candidate, rank, torch.full_like(rank, len(groups) + 1))


def minority_counts(groups: Tensor, species: Tensor, n_groups: int) -> tuple[Tensor, Tensor]:
    """Per group: the most common element (ties: lowest atomic number) and the number of sites not holding it."""
    counts = torch.zeros(n_groups, len(ELEMENTS), dtype=torch.long, device=species.device)
    counts.index_put_((groups, species), torch.ones_like(species), accumulate=True)
    host = counts.argmax(dim=-1)
    minority = counts.sum(dim=-1) - counts.max(dim=-1).values
    return host, minority


def _pairs(spec: str, flag: str, example: str) -> list[tuple[str, str]]:
    """``GROUP=VALUE,GROUP=VALUE`` → pairs; ConfigError naming ``flag`` on a malformed item."""
    pairs = []
    for item in spec.split(","):
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ConfigError(f"{flag} expects GROUP=VALUE[,GROUP=VALUE…] (e.g. {example}), got {spec!r}")
        pairs.append((name.strip(), value.strip()))
    names = [name for name, _ in pairs]
    for name in dict.fromkeys(n for n in names if names.count(n) > 1):
        raise ConfigError(f"{flag}: site group {name} is given twice in {spec!r}")
    return pairs


def parse_limits(
    base: Mapping[str, SublatticeLimits],
    max_species: str | None = None,
    fractions: str | None = None,
    allowed: Sequence[str] = (),
) -> dict[str, SublatticeLimits]:
    """``base`` updated from command-line specs; one-line ConfigError for a malformed or inconsistent one.

    Args:
        base: the configuration's limits (kept for groups and fields the specs do not mention).
        max_species: ``A=1,B=2,X=2`` (``--max-species``).
        fractions: ``B=0.0:0.25`` (``--dopant-fraction``; MIN:MAX of the minority fraction).
        allowed: ``B=Pb,Sn`` items (``--allowed-elements``, one group each; the elements comma-separated).
    """
    fields: dict[str, dict[str, object]] = {name: dict(vars(limit)) for name, limit in base.items()}
    for name, value in _pairs(max_species, "--max-species", "A=1,B=2,X=1") if max_species else []:
        try:
            fields.setdefault(name, {})["max_species"] = int(value)
        except ValueError:
            raise ConfigError(f"--max-species {name}={value}: expected a whole number of elements (≥ 1)") from None
    for name, value in _pairs(fractions, "--dopant-fraction", "B=0.0:0.25") if fractions else []:
        lo, sep, hi = value.partition(":")
        try:
            window = (float(lo), float(hi))
        except ValueError:
            window = None
        if not sep or window is None or not all(math.isfinite(v) for v in window):
            raise ConfigError(f"--dopant-fraction {name}={value}: expected MIN:MAX fractions (e.g. {name}=0.0:0.25)")
        fields.setdefault(name, {})["fraction"] = window
    for item in allowed:
        name, sep, symbols = item.partition("=")
        elements = tuple(s.strip() for s in symbols.split(",") if s.strip())
        if not sep or not name.strip() or not elements:
            raise ConfigError(f"--allowed-elements expects GROUP=El,El… (e.g. B=Pb,Sn), got {item!r}")
        fields.setdefault(name.strip(), {})["allowed"] = elements
    out = {}
    for name, values in fields.items():
        try:
            out[name] = SublatticeLimits(**values)  # type: ignore[arg-type]
        except ValueError as exc:
            raise ConfigError(f"sublattice {name}: {exc}") from None
    return out


__all__ = ["SublatticeLimits", "check_group_names", "count_window", "minority_counts", "parse_limits", "rank_within",
           "site_group_labels"]
