"""``enumerate``: every composition of the first template under the design space's masks, each with a short
batched relaxation of its lattice through the predictors — a baseline where the discrete space is small, and the
ground truth of that space (the complete set of its successes, against which ``smoacs compare`` reports coverage).

* **Candidates.** :func:`candidate_templates` replaces the run's template set by one template per
  (pattern, composition) of its first template: with ``anions="single"`` (the default for this method) the anion
  sites of one oxidation state share one element, with ``mixed`` every site is free. The elements are those the
  :class:`~smoacs.design.space.DesignSpace`'s masks allow (the space is built from the template and the run's space
  settings), in atomic-number order; each template carries its composition in ``species`` and its one pattern in
  ``ox_combos``, and a perovskite's cell starts cubic (its mean length). More than :data:`MAX_COMPOSITIONS`
  compositions (e.g. a 3×3×3 supercell): a one-line :class:`~smoacs.errors.ConfigError`. ``candidates`` is ignored.
* **Search** (per mini-batch): set every candidate's composition; scan ``⌈budget/2⌉`` uniform scalings of its cell
  whose lengths span the space's length bounds (one scored batch per scan point, :class:`Scorer`); start from the
  best point and take the remaining ``budget − scan`` gradient steps of the lattice alone (the SMOACS optimiser
  with the run's optimiser settings, the composition and coordinates frozen: ``lr_composition = lr_coords = 0``,
  no copy-and-mutate; with physics in the loop the lattice follows the potential's energy instead).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial

import numpy as np
import torch
from torch import Tensor

from smoacs.chem.elements import ELEMENTS, element_index
from smoacs.design.provenance import Provenance
from smoacs.design.space import DesignSpace, SpaceSettings
from smoacs.errors import ConfigError
from smoacs.objectives.terms import Objective
from smoacs.optimize.loop import DesignOptimizer, GeometryDriver, StepRecord
from smoacs.predictors.base import Predictor
from smoacs.search.base import SearchResult
from smoacs.search.proposals import BaselineSettings, Scorer, anion_leaders
from smoacs.templates.base import Template

#: The most compositions an ``enumerate`` run lists.
MAX_COMPOSITIONS = 200_000


def composition_counts(space: DesignSpace, anions: str) -> dict[int, int]:
    """Pattern → number of compositions of crystal 0 of ``space`` (exact integers, nothing listed)."""
    mask = space.choices().allowed_elements
    counts = {}
    for k in np.nonzero(space.combo_valid[0].cpu().numpy())[0].tolist():
        units = independent_sites(space, k, anions)
        counts[k] = math.prod(int(mask[i, k].sum()) for i in units)
    return counts


def independent_sites(space: DesignSpace, pattern: int, anions: str) -> list[int]:
    """Sites of crystal 0 chosen independently under ``pattern`` (``single``: one per anion group)."""
    n = int(space.n_atoms[0])
    if anions != "single":
        return list(range(n))
    leaders = anion_leaders(space, torch.full((len(space.crystal_idx),), pattern, device=space.n_atoms.device))
    return [i for i in range(n) if int(leaders[i]) == i]


def compositions(space: DesignSpace, anions: str) -> list[tuple[int, np.ndarray]]:
    """(pattern, ``[M, n_sites]`` element indices) of every composition of crystal 0 of ``space``, in order."""
    counts = composition_counts(space, anions)
    total = sum(counts.values())
    if total > MAX_COMPOSITIONS:
        raise ConfigError(
            f"enumerate: template {space.templates[0].name} has {total:.3g} compositions (anions: {anions}), more than "
            f"{MAX_COMPOSITIONS:,}; enumerate a single-cell template or single anions, or use another search method"
        )
    mask = space.choices().allowed_elements.cpu().numpy()
    n = int(space.n_atoms[0])
    out = []
    for k in counts:
        units = independent_sites(space, k, anions)
        grids = np.meshgrid(*[np.nonzero(mask[i, k])[0] for i in units], indexing="ij")
        chosen = np.stack([g.reshape(-1) for g in grids], axis=1)  # [M, units]
        leaders = anion_leaders(space, torch.full((len(space.crystal_idx),), k)).cpu().numpy()[:n]
        source = leaders if anions == "single" else np.arange(n)  # the unit each site takes its element from
        column = {site: j for j, site in enumerate(units)}
        out.append((k, chosen[:, [column[int(source[i])] for i in range(n)]]))
    return out


def candidate_templates(templates: Sequence[Template], space: SpaceSettings, anions: str) -> list[Template]:
    """One template per composition of ``templates[0]`` (see the module docstring)."""
    base = templates[0]
    if base.is_perovskite:
        base = replace(base, lengths=np.full(3, float(np.mean(base.lengths))))
    table = compositions(DesignSpace([base], space), anions)
    out = []
    for k, species in table:
        for row in species:
            symbols = tuple(ELEMENTS[e] for e in row)
            name = f"{base.name}-k{k}-{''.join(symbols)}"
            out.append(replace(base, name=name, ox_combos=base.ox_combos[k : k + 1].copy(), species=symbols))
    return out


def set_template_compositions(space: DesignSpace) -> None:
    """Set every crystal of ``space`` to its template's composition (``species``, first pattern), as the templates
    of :func:`candidate_templates` carry them; ConfigError if a template has no species."""
    species = [element_index(symbol) for template in space.templates for symbol in template.species]
    if len(species) != len(space.crystal_idx):
        raise ConfigError("enumerate searches the templates of its own candidate list (every template's species set)")
    device = space.n_atoms.device
    space.set_composition(torch.zeros(space.n_crystals, dtype=torch.long, device=device), torch.tensor(species))


def scan_scales(space: DesignSpace, points: int) -> Tensor:
    """``[points, B]`` uniform scalings of each crystal's current lengths that span its length bounds."""
    lengths = space.lengths().detach().double()
    low = (space.length_low.double() / lengths).max(dim=1).values
    high = (space.length_high.double() / lengths).min(dim=1).values
    fraction = (torch.arange(points, dtype=torch.float64)[:, None] + 0.5) / points
    return low + (high - low) * fraction


def search(
    space: DesignSpace,
    predictors: Sequence[Predictor],
    objectives: Sequence[Objective],
    settings: BaselineSettings,
    seed: int,
    callbacks: Sequence[Callable[[StepRecord], None]] = (),
    geometry: GeometryDriver | None = None,
) -> SearchResult:
    """Set the templates' compositions, scan the lattice scale, relax the lattice (see the module docstring)."""
    set_template_compositions(space)
    n_scan = max(1, math.ceil(settings.budget / 2))
    steps = settings.budget - n_scan
    scorer = Scorer(predictors, objectives, settings.optimizer.min_distance_cutoff)
    lattice0, frac0 = space.lattice().detach().double(), space.frac_coords().detach().double()
    scales = scan_scales(space, n_scan)
    losses = torch.stack([_scaled_loss(space, scorer, lattice0, frac0, scale) for scale in scales])
    best = scales.gather(0, losses.argmin(dim=0, keepdim=True))[0]
    space.set_geometry(lattice0 * best[:, None, None], frac0)
    timings = {"scan_points": float(n_scan), "scan_predictor_s": scorer.predictor_s, "evaluations_per_candidate": float(settings.budget)}
    if steps == 0:  # a scan alone
        n = space.n_crystals
        history = {"loss": losses.min(dim=0).values.float().numpy()[None]}
        provenance = Provenance(history, {}, np.arange(n), np.full(n, -1))
        return SearchResult(provenance, {**timings, "predictor_s": scorer.predictor_s, "n_evaluations": scorer.n_evaluations})
    relax = replace(settings.optimizer, steps=steps, lr_composition=0.0, lr_coords=0.0, copy_mutate_steps=())
    shifted = [partial(_after_scan, callback, n_scan) for callback in callbacks]  # steps count after the scan
    result = DesignOptimizer(space, predictors, objectives, relax, seed=seed, geometry=geometry).run(shifted)
    timings.update(
        optimize_s=result.wall_time_s, predictor_s=result.predictor_time_s + scorer.predictor_s,
        n_evaluations=scorer.n_evaluations + steps * space.n_crystals,
    )  # fmt: skip
    return SearchResult(result, timings)


def _after_scan(callback: Callable[[StepRecord], None], n_scan: int, record: StepRecord) -> None:
    callback(replace(record, step=record.step + n_scan))


def _scaled_loss(space: DesignSpace, scorer: Scorer, lattice: Tensor, frac: Tensor, scale: Tensor) -> Tensor:
    space.set_geometry(lattice * scale[:, None, None], frac)
    return scorer(space).loss.cpu()
