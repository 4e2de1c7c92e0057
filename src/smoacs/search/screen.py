"""Screened starts for the gradient search: the best single-anion compositions of the template, at equilibrium.

A gradient search over a mixed-anion design space almost never ends at a single-anion composition (three equal X
sites), so the handful of ABX3 compositions that meet the criteria at their own equilibrium lattice constant are
out of its reach (issue 17's ground truth). :func:`screen` finds them cheaply before the search, and the run puts
them in some of its candidate slots; the other candidates are searched as usual.

1. **Pool**: every composition of the first template with single anions (:mod:`smoacs.search.enumerate`'s
   candidate list: 1,792 for the perovskite unit cell), each as an ideal cubic cell.
2. **Scan**: ``points`` cubic lattice constants within ±:data:`SCAN_WIDTH` of the ideal 2 (r_B + r_X) (Shannon
   radii, :func:`ideal_lattice_constant`), scored by the run's predictors and objectives (one batched pass per
   point, :class:`~smoacs.search.proposals.Scorer`); the ``shortlist`` × ``candidates`` compositions with the
   lowest training loss at their best point go on.
3. **Equilibrium** (with a potential): the potential's equilibrium cubic lattice constant of each shortlisted
   composition at ideal positions, from parabola fits to its energy (:func:`equilibrium_lattice_constant`).
   Without a potential the best scan point stands in for it.
4. **Choice**: the shortlisted compositions that meet every objective at that lattice constant (evaluation margins,
   as the verdict), lowest training loss first, at most ``candidates``.

The chosen compositions become templates (one oxidation pattern, the composition in ``species``, the equilibrium
cell, named ``screen-<formula>``) that replace the *last* templates of the run; :func:`apply_screened` then sets
their compositions in the design space, and the gradient search leaves them out of its steps and of
copy-and-mutate, and the polish leaves them as they are (their geometry is already at equilibrium). The final
relaxation and the verdict treat them like every other candidate, so a screened start is a success only if its
relaxed structure is one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor

from smoacs.chem.elements import element_index
from smoacs.design.space import DesignSpace, SpaceSettings
from smoacs.errors import ConfigError
from smoacs.objectives.derived import role_radii
from smoacs.objectives.terms import Objective
from smoacs.predictors.base import Predictor
from smoacs.predictors.potential import Potential
from smoacs.search.enumerate import candidate_templates, set_template_compositions
from smoacs.search.proposals import Scorer
from smoacs.templates.base import SCREENED_PREFIX, Template

#: Name prefix of the templates :func:`screen` returns (result.csv's ``template`` column shows it).
PREFIX = SCREENED_PREFIX
#: Half-width of the scan around the ideal lattice constant 2 (r_B + r_X), as a fraction of it.
SCAN_WIDTH = 0.1
#: Relative half-spacings of the parabola fits to the potential's energy (coarse twice, so that a start up to ~15 %
#: off is bracketed; then fine). Each fit moves the lattice constant by at most twice its spacing.
PARABOLA_STEPS = (0.04, 0.04, 0.01)


@dataclass(frozen=True)
class ScreenSettings:
    """How many candidates start from the screen, and how it searches (module docstring).

    Attributes:
        candidates: candidate slots given to screened compositions, at most (0: no screen).
        points: lattice scalings scanned per composition.
        shortlist: compositions relaxed to equilibrium, as a multiple of ``candidates``.
    """

    candidates: int = 0
    points: int = 5
    shortlist: int = 8

    def __post_init__(self) -> None:
        if self.candidates < 0 or self.points < 1 or self.shortlist < 1:
            raise ConfigError(
                f"screen: candidates must be ≥ 0 (got {self.candidates}); points and shortlist ≥ 1 (got {self.points}, {self.shortlist})"
            )


@dataclass
class ScreenReport:
    """What the screen did: pool size, shortlist, chosen names, seconds (scan, equilibrium)."""

    pool: int = 0
    shortlisted: int = 0
    chosen: list[str] = field(default_factory=list)
    scan_s: float = 0.0
    equilibrium_s: float = 0.0

    def to_dict(self) -> dict[str, object]:
        """Plain data for run.json's timings."""
        return {
            "screen_pool": self.pool, "screen_shortlisted": self.shortlisted, "screen_chosen": len(self.chosen),
            "screen_scan_s": self.scan_s, "screen_equilibrium_s": self.equilibrium_s,
        }  # fmt: skip


def screen(
    template: Template,
    settings: SpaceSettings,
    predictors: Sequence[Predictor],
    objectives: Sequence[Objective],
    screen_settings: ScreenSettings,
    cutoff: float,
    potential: Potential | None = None,
    device: torch.device | str = "cpu",
) -> tuple[list[Template], ScreenReport]:
    """The screened templates (module docstring), best first, and a report. ConfigError if ``template`` is not a
    perovskite or has too many single-anion compositions to list (e.g. a supercell)."""
    report = ScreenReport()
    if screen_settings.candidates == 0:
        return [], report
    if not template.is_perovskite or template.n_atoms != 5:
        raise ConfigError(f"physics.screen needs a perovskite unit-cell template (ABX3, 5 sites); {template.name} is not; use --screen 0")
    start = time.perf_counter()
    pool = candidate_templates([template], settings, "single")
    space = DesignSpace(pool, settings, device=device)
    set_template_compositions(space)
    report.pool = space.n_crystals
    scorer = Scorer(predictors, objectives, cutoff)
    a0 = ideal_lattice_constant(space)
    factors = torch.linspace(1 - SCAN_WIDTH, 1 + SCAN_WIDTH, screen_settings.points, dtype=torch.float64)
    loss = torch.stack([_cubic_loss(space, scorer, a0 * f) for f in factors])  # [points, M]
    best = a0.cpu() * factors[loss.argmin(dim=0)]
    n_short = min(space.n_crystals, screen_settings.shortlist * screen_settings.candidates)
    short = torch.argsort(loss.min(dim=0).values, stable=True)[:n_short]
    report.shortlisted = n_short
    report.scan_s = time.perf_counter() - start
    sub = DesignSpace([pool[i] for i in short.tolist()], settings, device=device)
    set_template_compositions(sub)
    start = time.perf_counter()
    a_eq = best[short] if potential is None else equilibrium_lattice_constant(sub, potential, best[short])
    report.equilibrium_s = time.perf_counter() - start
    _set_cubic(sub, a_eq)
    scores = scorer(sub)
    ok = torch.ones(sub.n_crystals, dtype=torch.bool)
    for objective in objectives:
        ok &= objective.satisfied(scores.values).cpu()
    order = [int(i) for i in torch.argsort(scores.loss.cpu(), stable=True) if bool(ok[i])][: screen_settings.candidates]
    lengths = sub.lengths().detach().double().cpu().numpy()
    chosen = [_as_start(sub.templates[i], lengths[i]) for i in order]
    report.chosen = [t.name for t in chosen]
    return chosen, report


def ideal_lattice_constant(space: DesignSpace) -> Tensor:
    """``[B]`` float64 ideal cubic perovskite lattice constant 2 (r_B + r_X) (Å, Shannon radii of the discrete
    composition in its pattern's states)."""
    design = space.discretize()
    assert design.site_radius is not None
    radii = role_radii(design.site_radius.double(), space.site_roles, space.crystal_idx, space.n_crystals)
    return 2.0 * (radii[:, 1] + radii[:, 2])


def equilibrium_lattice_constant(space: DesignSpace, potential: Potential, start: Tensor) -> Tensor:
    """``[B]`` the potential's equilibrium cubic lattice constant (Å) of each crystal's discrete composition at its
    template's ideal positions: the minimum of a parabola through the energies at ``start`` × (1 ∓ w, 1, 1 ± w)
    for w = :data:`PARABOLA_STEPS` in turn (energies only, one batched call per point; a fit without positive
    curvature steps downhill by 2w instead)."""
    a = start.double().cpu()
    for width in PARABOLA_STEPS:
        energies = torch.stack([_cubic_energy(space, potential, a * f) for f in (1 - width, 1.0, 1 + width)])
        e0, e1, e2 = energies.unbind(0)
        curvature = e0 - 2 * e1 + e2
        h = a * width
        shift = torch.where(curvature > 0, 0.5 * h * (e0 - e2) / torch.where(curvature > 0, curvature, 1.0), -h * torch.sign(e2 - e0))
        a = a + shift.clamp(-2 * h, 2 * h)
    return a


def _set_cubic(space: DesignSpace, a: Tensor) -> None:
    """Put every crystal of ``space`` in its ideal cubic cell of lattice constant ``a [B]`` Å (within bounds)."""
    device = space.n_atoms.device
    eye = torch.eye(3, dtype=torch.float64, device=device)
    space.set_geometry(a.to(device)[:, None, None] * eye, space.frac0.double())


def _cubic_loss(space: DesignSpace, scorer: Scorer, a: Tensor) -> Tensor:
    _set_cubic(space, a)
    return scorer(space).loss.cpu()


@torch.no_grad()
def _cubic_energy(space: DesignSpace, potential: Potential, a: Tensor) -> Tensor:
    _set_cubic(space, a)
    crystals = space.discretize().crystals
    potential.rebuild(crystals)
    return potential.compute(crystals, forces=False, stress=False).energy_per_atom.double().cpu()


def _as_start(template: Template, lengths: np.ndarray) -> Template:
    """``template`` (one pattern, its composition in ``species``) renamed as a screened start, at ``lengths``."""
    formula = "".join(template.species)
    return replace(template, name=f"{PREFIX}{formula}", lengths=np.asarray(lengths, dtype=float))


def place(templates: list[Template], chosen: list[Template]) -> tuple[list[Template], np.ndarray]:
    """``templates`` with their last ``len(chosen)`` entries replaced by ``chosen``, and ``[n]`` bool: screened."""
    n = len(templates)
    k = min(len(chosen), n)
    placed = templates[: n - k] + chosen[:k]
    return placed, np.array([i >= n - k for i in range(n)], dtype=bool)


def apply_screened(space: DesignSpace, screened: np.ndarray) -> Tensor:
    """Set the screened crystals' compositions (their templates' ``species`` and single pattern) in ``space``; the
    other crystals keep theirs. Returns ``[B]`` bool on the space's device: screened."""
    device = space.n_atoms.device
    mask = torch.as_tensor(np.asarray(screened, dtype=bool), device=device)
    if not bool(mask.any()):
        return mask
    rows = torch.nonzero(mask).flatten()
    species = torch.tensor(
        [element_index(s) for c in rows.tolist() for s in space.templates[c].species], dtype=torch.long, device=device
    )
    space.set_composition_rows(rows, torch.zeros(len(rows), dtype=torch.long, device=device), species)
    return mask
