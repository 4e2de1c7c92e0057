"""`DesignSpace`: the learnable parametrisation of a batch of crystals, and its soft and discrete realisations.

Parametrisation (per crystal c, site i, oxidation pattern k, element e):

* lattice lengths ``a = lo + (hi − lo)·sigmoid(λ)``: smooth and bounded, so a length near a bound keeps a gradient
  (the original clamps, which zeroes the gradient and lets Adam momentum pin lengths to the bounds);
* angles likewise within ``angle_bounds`` when the template frees them, otherwise fixed at the template's values;
* coordinates ``f = f₀ + ε·tanh(δ)`` with ε the template's coordinate bound (``f = f₀ + δ`` when unbounded). They
  are not wrapped during optimisation, so neighbour lists stay valid between rebuilds; outputs are wrapped;
* composition, a joint masked mixture (METHOD §11.3, "recommended" design):
  ``P(k) = softmax_k(v_k / T)`` over the crystal's valid patterns and
  ``P(e | i, k) = softmax_e(ℓ_ie / T)`` over the elements allowed at site i's oxidation state under pattern k
  (−∞ elsewhere), giving ``P_i(e) = Σ_k P(k)·P(e | i, k)``. Masking is hard at every temperature, so no probability
  ever sits on a disallowed element and the argmax is always admissible. Element logits are shared across patterns:
  a site's preference for, e.g., Ba carries over to whichever pattern admits Ba.

``discretize`` takes ``k* = argmax P(k)`` and ``e*_i = argmax_e P(e | i, k*)``, so every output is charge-neutral
under its chosen pattern by construction.

Sublattice limits (``SpaceSettings.sublattices``, docs/DESIGN.md §5c): the sites of a group with ``max_species = k``
share k slots instead of using their own element logits, ``P(e | i, k) = Σ_s P(s | i) · P(e | group, slot s, k)``
(slot 0 the host); a slot may only take elements allowed at every site of its group, so neutrality stays exact and a
discrete cell holds at most k elements on the group. Minority-fraction windows add a soft penalty
(``SoftDesign.penalty``) and are met exactly at discretisation by a projection (``_shared_species``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from smoacs.chem.elements import N_ELEMENTS, element_index
from smoacs.chem.oxidation import allowed_elements
from smoacs.chem.radii import ox_index, radius_table
from smoacs.crystal.batch import CrystalBatch
from smoacs.crystal.lattice import lattice_from_parameters, lattice_to_parameters, periodic_displacement
from smoacs.design.sublattices import SublatticeLimits, count_window, minority_counts, rank_within, site_group_labels
from smoacs.errors import ConfigError
from smoacs.objectives.derived import tolerance_factor
from smoacs.templates.base import Template

NEG_INF = float("-inf")
#: Weight of the soft minority-fraction window penalty (per unit of fraction outside the window, summed over groups).
FRACTION_WEIGHT = 10.0
#: Weight of the penalty on a host and a substituent choosing the same element (windows with a lower bound > 0).
OVERLAP_WEIGHT = 1.0
#: Temperature at which the initial slot preferences of shared groups are set (the default ``temperature_start``).
INIT_TEMPERATURE = 1e-2


@dataclass(frozen=True)
class SpaceSettings:
    """Bounds and initialisation of a design space.

    Attributes:
        length_bounds: (min, max) lattice length per unit cell in Å; multiplied by the supercell factor of a
            template when ``scale_bounds_with_cells`` (n×n×n perovskites use n·bounds).
        angle_bounds: (min, max) angles in degrees for templates with free angles.
        ionic_masks: restrict allowed elements to (element, state) pairs with a Shannon radius (perovskites need radii
            for the tolerance factor).
        logit_noise: standard deviation of the initial element and pattern logits (breaks ties between candidates).
        relative_length_bounds: (min, max) factors on each template length for general templates (no A/B/X roles):
            bounds ``[max(lo, f_min·a₀), min(hi, f_max·a₀)]`` with (lo, hi) = ``length_bounds`` as sanity limits.
            None: ``length_bounds`` for every template (the perovskite behaviour).
        relative_angle_bounds: half-width (degrees) around each template angle for templates with free angles,
            intersected with ``angle_bounds``; None: ``angle_bounds`` alone.
        default_coord_bound: ± bound on fractional displacements of templates that set none (general templates);
            None: unbounded (the raw displacement is added directly).
        sublattices: site group name (``A``, ``B``, ``X`` for perovskites; a template's own element for general
            templates) → :class:`~smoacs.design.sublattices.SublatticeLimits`. Empty: no limits (every site chooses
            its own element, the original parametrisation).
    """

    length_bounds: tuple[float, float] = (2.0, 10.0)
    angle_bounds: tuple[float, float] = (60.0, 120.0)
    ionic_masks: bool = True
    logit_noise: float = 1e-3
    relative_length_bounds: tuple[float, float] | None = None
    relative_angle_bounds: float | None = None
    default_coord_bound: float | None = None
    sublattices: dict[str, SublatticeLimits] = field(default_factory=dict)

    def __post_init__(self) -> None:
        a_lo, a_hi = self.angle_bounds
        if not 0 < a_lo < a_hi < 180:
            raise ValueError(f"angle_bounds must satisfy 0 < min < max < 180 degrees, got {self.angle_bounds}")
        if not self.logit_noise >= 0:
            raise ValueError(f"logit_noise must be ≥ 0, got {self.logit_noise}")
        if self.relative_length_bounds is not None and not 0 < self.relative_length_bounds[0] < 1 < self.relative_length_bounds[1]:
            raise ValueError(f"relative_length_bounds must satisfy 0 < min < 1 < max, got {self.relative_length_bounds}")
        if self.relative_angle_bounds is not None and not self.relative_angle_bounds > 0:
            raise ValueError(f"relative_angle_bounds must be > 0 degrees, got {self.relative_angle_bounds}")
        if self.default_coord_bound is not None and not self.default_coord_bound > 0:
            raise ValueError(f"default_coord_bound must be > 0, got {self.default_coord_bound}")


@dataclass(frozen=True)
class DiscreteChoices:
    """The discrete choices of a design space (what :meth:`DesignSpace.set_composition` may pick).

    Attributes:
        valid_patterns: ``[B, K]`` bool, oxidation pattern k is admissible for crystal c.
        pattern_states: ``[N, K]`` oxidation state of site i under pattern k.
        allowed_elements: ``[N, K, 98]`` bool, element e (atomic number − 1) may sit at site i under pattern k.
    """

    valid_patterns: Tensor
    pattern_states: Tensor
    allowed_elements: Tensor


@dataclass
class SoftDesign:
    """A realisation at temperature T: the soft crystal batch plus quantities derived from the composition.

    Attributes:
        crystals: batch with soft ``species_probs``.
        combo_probs: ``[n_crystals, K]`` P(k).
        tolerance: ``[n_crystals]`` Goldschmidt tolerance factor from soft Shannon radii (NaN without A/B/X roles).
        site_radius: ``[n_atoms]`` expected Shannon radius (Å) of each site under the soft composition.
        penalty: ``[n_crystals]`` soft sublattice penalty (minority-fraction windows, host/substituent overlap) to
            add to the loss; None without fraction windows.
    """

    crystals: CrystalBatch
    combo_probs: Tensor
    tolerance: Tensor
    site_radius: Tensor | None = None
    penalty: Tensor | None = None


@dataclass
class SharedChoice:
    """The soft element choice of the sites in shared (limited) site groups.

    Attributes:
        rows: ``[n]`` indices of the sites in shared groups.
        crystal, group: ``[n]`` their crystal and group index.
        weights: ``[n, S]`` P(slot s | site), slot 0 the host.
        slot_probs: ``[B, G, S, K, 98]`` P(e | crystal, group, slot, pattern) (zero for invalid patterns).
    """

    rows: Tensor
    crystal: Tensor
    group: Tensor
    weights: Tensor
    slot_probs: Tensor

    def site_probs(self) -> Tensor:
        """``[n, K, 98]`` P(e | site, pattern) = Σ_s P(s | site) P(e | group, s, pattern)."""
        return torch.einsum("ns,nske->nke", self.weights, self.slot_probs[self.crystal, self.group])


@dataclass
class DiscreteDesign:
    """Argmax realisation: a one-hot batch with wrapped coordinates and its chosen oxidation pattern.

    Attributes:
        crystals: one-hot float64 batch, coordinates wrapped into [0, 1).
        combo: ``[n_crystals]`` chosen pattern index.
        ox_states: ``[n_atoms]`` oxidation state of every site under the chosen pattern.
        tolerance: ``[n_crystals]`` tolerance factor from the chosen elements' radii (NaN without roles).
        site_radius: ``[n_atoms]`` Shannon radius (Å) of each chosen element in its pattern state.
    """

    crystals: CrystalBatch
    combo: Tensor
    ox_states: Tensor
    tolerance: Tensor
    site_radius: Tensor | None = None


def _logit(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 1e-4, 1 - 1e-4)
    return np.log(x / (1 - x))


def _bounded(raw: Tensor, low: Tensor, high: Tensor) -> Tensor:
    return low + (high - low) * torch.sigmoid(raw)


def _raw_bounded(value: Tensor, low: Tensor, high: Tensor, eps: float) -> Tensor:
    """Inverse of :func:`_bounded`, with ``value`` clamped to ``eps`` of the span inside ``[low, high]``."""
    fraction = ((value - low) / (high - low)).clamp(eps, 1.0 - eps)
    return torch.log(fraction / (1.0 - fraction))


class DesignSpace(nn.Module):
    """Learnable lattice, coordinates and composition for a batch of templates.

    Parameters (all per crystal or per site, so copy-and-mutate and quarantine act on rows):
    ``length_raw [B,3]``, ``angle_raw [B,3]``, ``coord_raw [N,3]``, ``element_logits [N,98]``, ``combo_logits [B,K]``.

    Every tensor that describes one crystal is tagged in :attr:`CRYSTAL_FIELDS` (first dimension B) or
    :attr:`ATOM_FIELDS` (first dimension N, ordered by crystal); :meth:`copy_crystals` copies both kinds at once.
    :meth:`set_geometry` and :meth:`set_composition` put the space into a given state (within its bounds).
    """

    #: Per-crystal tensors (parameters and buffers), first dimension B.
    CRYSTAL_FIELDS = ("length_raw", "angle_raw", "combo_logits", "length_low", "length_high", "angle_low",
                      "angle_high", "angles0", "free_angles", "combo_valid")  # fmt: skip
    #: Per-site tensors (parameters and buffers), first dimension N.
    ATOM_FIELDS = ("coord_raw", "element_logits", "frac0", "coord_bound", "site_roles", "ox_states", "element_mask",
                   "site_radii")  # fmt: skip

    def __init__(
        self,
        templates: Sequence[Template],
        settings: SpaceSettings | None = None,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        if not templates:
            raise ValueError("a design space needs at least one template")
        self.settings = settings or SpaceSettings()
        self.templates = list(templates)
        generator = torch.Generator().manual_seed(seed)
        n_atoms = np.array([t.n_atoms for t in templates])
        n_combos = max(t.n_combos for t in templates)
        self.n_combos = n_combos

        # Lattice bounds per crystal: unit-cell bounds × supercell factor (inferred from the coordinate bound).
        lo, hi = self.settings.length_bounds
        factors = np.array([self._supercell_factor(t) for t in templates], dtype=np.float64)
        length_low = lo * factors[:, None].repeat(3, 1)
        length_high = hi * factors[:, None].repeat(3, 1)
        lengths0 = np.array([t.lengths for t in templates], dtype=np.float64)
        if np.any(lengths0 < length_low - 1e-9) or np.any(lengths0 > length_high + 1e-9):
            raise ValueError(f"template lattice lengths must lie within length_bounds {self.settings.length_bounds} Å")
        general = np.array([not t.is_perovskite for t in templates])
        if self.settings.relative_length_bounds is not None:
            f_lo, f_hi = self.settings.relative_length_bounds
            length_low = np.where(general[:, None], np.maximum(length_low, f_lo * lengths0), length_low)
            length_high = np.where(general[:, None], np.minimum(length_high, f_hi * lengths0), length_high)
        angles0 = np.array([t.angles for t in templates], dtype=np.float64)
        free_angles = np.array([t.free_angles for t in templates])
        angle_low = np.full_like(angles0, self.settings.angle_bounds[0])
        angle_high = np.full_like(angles0, self.settings.angle_bounds[1])
        if np.any(free_angles[:, None] & ((angles0 < angle_low) | (angles0 > angle_high))):
            raise ValueError(f"template angles must lie within angle_bounds {self.settings.angle_bounds}°")
        if self.settings.relative_angle_bounds is not None:
            width = self.settings.relative_angle_bounds
            angle_low = np.maximum(angle_low, angles0 - width)
            angle_high = np.minimum(angle_high, angles0 + width)
        # Frozen angles never use their bounds; keep them non-degenerate so the raw parameter stays finite.
        angle_high = np.where(angle_high - angle_low < 1e-6, angle_low + 1.0, angle_high)

        # Per-site tables.
        frac0 = np.concatenate([t.frac_coords for t in templates])
        default_bound = np.inf if self.settings.default_coord_bound is None else self.settings.default_coord_bound
        bounds = np.concatenate(
            [np.full(t.n_atoms, default_bound if t.coord_bound is None else t.coord_bound) for t in templates]
        )
        roles = np.concatenate([t.site_roles for t in templates])
        ox = np.zeros((len(frac0), n_combos), dtype=np.int64)
        combo_valid = np.zeros((len(templates), n_combos), dtype=bool)
        start = 0
        for c, t in enumerate(templates):
            ox[start : start + t.n_atoms, : t.n_combos] = t.ox_combos.T
            combo_valid[c, : t.n_combos] = True
            start += t.n_atoms
        limits = self.settings.sublattices
        labels = np.array([label for t in templates for label in site_group_labels(t)], dtype=object)
        element_mask = self._element_mask(ox, combo_valid, n_atoms, self._allowed_mask(labels) if limits else None)
        shared = self._shared_tables(labels, combo_valid, element_mask, n_atoms) if limits else None
        radii = radius_table()  # [98, n_ox]
        site_radii = np.zeros((len(frac0), n_combos, N_ELEMENTS), dtype=np.float32)
        for k in range(n_combos):
            for state in np.unique(ox[:, k]):
                if state == 0:
                    continue
                rows = ox[:, k] == state
                site_radii[rows, k, :] = radii[:, ox_index(int(state))]

        f32 = torch.float32
        self.register_buffer("n_atoms", torch.as_tensor(n_atoms))
        self.register_buffer("crystal_idx", torch.repeat_interleave(torch.arange(len(templates)), self.n_atoms))
        self.register_buffer("length_low", torch.as_tensor(length_low, dtype=f32))
        self.register_buffer("length_high", torch.as_tensor(length_high, dtype=f32))
        self.register_buffer("angle_low", torch.as_tensor(angle_low, dtype=f32))
        self.register_buffer("angle_high", torch.as_tensor(angle_high, dtype=f32))
        self.register_buffer("angles0", torch.as_tensor(angles0, dtype=f32))
        self.register_buffer("free_angles", torch.as_tensor(free_angles))
        self.register_buffer("frac0", torch.as_tensor(frac0, dtype=f32))
        self.register_buffer("coord_bound", torch.as_tensor(bounds, dtype=f32))
        self.register_buffer("site_roles", torch.as_tensor(roles))
        self.register_buffer("ox_states", torch.as_tensor(ox))
        self.register_buffer("combo_valid", torch.as_tensor(combo_valid))
        self.register_buffer("element_mask", torch.as_tensor(element_mask))  # [N, K, 98]
        self.register_buffer("site_radii", torch.as_tensor(site_radii))  # [N, K, 98]

        length_raw = _logit((lengths0 - length_low) / (length_high - length_low))
        angle_raw = _logit((angles0 - angle_low) / (angle_high - angle_low))
        noise = self.settings.logit_noise
        self.length_raw = nn.Parameter(torch.as_tensor(length_raw, dtype=f32))
        self.angle_raw = nn.Parameter(torch.as_tensor(angle_raw, dtype=f32))
        self.coord_raw = nn.Parameter(torch.zeros(len(frac0), 3))
        self.element_logits = nn.Parameter(noise * torch.randn(len(frac0), N_ELEMENTS, generator=generator))
        self.combo_logits = nn.Parameter(noise * torch.randn(len(templates), n_combos, generator=generator))
        self.n_groups = 0
        if shared is not None:
            self._register_shared(shared, generator)
        self.to(device)

    @staticmethod
    def _supercell_factor(template: Template) -> float:
        """n for an n×n×n perovskite supercell (5n³ sites), else 1."""
        if not template.is_perovskite:
            return 1.0
        return float(round((template.n_atoms / 5) ** (1 / 3)))

    def _element_mask(
        self, ox: np.ndarray, combo_valid: np.ndarray, n_atoms: np.ndarray, site_allowed: np.ndarray | None = None
    ) -> np.ndarray:
        """``[N, K, 98]`` bool: elements allowed at each site under each pattern (all False for invalid patterns);
        ``site_allowed`` (``[N, 98]``, the sublattice limits' allowed elements) narrows it further."""
        table = {}
        mask = np.zeros((ox.shape[0], ox.shape[1], N_ELEMENTS), dtype=bool)
        site_valid = np.repeat(combo_valid, n_atoms, axis=0)
        for state in np.unique(ox):
            if state == 0:
                continue
            table[state] = allowed_elements(int(state), ionic=self.settings.ionic_masks)
            mask[ox == state] = table[state]
        if site_allowed is not None:
            mask &= site_allowed[:, None, :]
        mask &= site_valid[:, :, None]
        empty = site_valid & ~mask.any(axis=-1)
        if empty.any():
            # A pattern that leaves a site with no admissible element is dropped for that crystal.
            crystal_of_site = np.repeat(np.arange(len(n_atoms)), n_atoms)
            bad = np.zeros_like(combo_valid)
            np.logical_or.at(bad, crystal_of_site, empty)
            combo_valid &= ~bad
            mask &= np.repeat(combo_valid, n_atoms, axis=0)[:, :, None]
            if not combo_valid.any(axis=1).all():
                names = [self.templates[c].name for c in np.nonzero(~combo_valid.any(axis=1))[0]]
                if site_allowed is not None:
                    raise ConfigError(
                        f"the sublattices' allowed elements fit no oxidation pattern of template(s) {', '.join(names[:5])} "
                        "(every pattern leaves a site without an allowed element of its oxidation state)"
                    )
                raise ValueError(f"templates with no admissible oxidation pattern: {', '.join(names[:5])}")
        return mask

    # ---- sublattice limits (see smoacs.design.sublattices) -----------------------------------------------------------
    def _allowed_mask(self, labels: np.ndarray) -> np.ndarray:
        """``[N, 98]`` bool: the elements each site's group allows (every element for groups without a list)."""
        allowed = np.ones((len(labels), N_ELEMENTS), dtype=bool)
        for name, limit in self.settings.sublattices.items():
            if limit.allowed:
                row = np.zeros(N_ELEMENTS, dtype=bool)
                row[[element_index(symbol) for symbol in limit.allowed]] = True
                allowed[labels == name] &= row
        return allowed

    def _shared_tables(
        self, labels: np.ndarray, combo_valid: np.ndarray, element_mask: np.ndarray, n_atoms: np.ndarray
    ) -> dict[str, np.ndarray] | None:
        """Tables of the groups with ``max_species`` (shared element choices); drops patterns they cannot fill.

        A shared group's slot may only take an element allowed at *every* site of the group under the pattern (so
        one choice fits all its sites and neutrality stays exact); a pattern under which a present group has no
        such element (or fewer than two with a minority lower bound > 0) is dropped for that crystal. Updates
        ``combo_valid`` and ``element_mask`` in place (shared sites: the group's elements).
        """
        limits = self.settings.sublattices
        names = sorted(name for name, limit in limits.items() if limit.shared)
        if not names:
            return None
        n_crystals, n_combos = combo_valid.shape
        site_group = np.full(len(labels), -1, dtype=np.int64)
        for g, name in enumerate(names):
            site_group[labels == name] = g
        crystal = np.repeat(np.arange(n_crystals), n_atoms)
        rows = np.nonzero(site_group >= 0)[0]
        c, g = crystal[rows], site_group[rows]
        size = np.zeros((n_crystals, len(names)), dtype=np.int64)
        np.add.at(size, (c, g), 1)
        allowed_count = np.zeros((n_crystals, len(names), n_combos, N_ELEMENTS), dtype=np.int64)
        np.add.at(allowed_count, (c, g), element_mask[rows].astype(np.int64))
        present = size > 0
        group_mask = (allowed_count == size[:, :, None, None]) & present[:, :, None, None]
        low = np.zeros_like(size)
        high = size.copy()
        for j, name in enumerate(names):
            low[:, j], high[:, j] = count_window(limits[name].fraction, size[:, j])
        infeasible = present & ((low > high) | (low > size // 2))
        if infeasible.any():
            cc, gg = (int(v[0]) for v in np.nonzero(infeasible))
            window = limits[names[gg]].fraction
            raise ConfigError(
                f"sublattice {names[gg]} of template {self.templates[cc].name} has {size[cc, gg]} sites: no number of "
                f"minority sites gives a fraction within [{window[0]:g}, {window[1]:g}]"  # type: ignore[index]
            )
        n_allowed = group_mask.sum(axis=-1)
        unfilled = present[:, :, None] & ((n_allowed == 0) | ((low > 0)[:, :, None] & (n_allowed < 2)))
        combo_valid &= ~unfilled.any(axis=1)
        if not combo_valid.any(axis=1).all():
            cc = int(np.nonzero(~combo_valid.any(axis=1))[0][0])
            gg = int(np.nonzero(unfilled[cc].any(axis=-1))[0][0])
            raise ConfigError(
                f"sublattice {names[gg]} of template {self.templates[cc].name}: no element is allowed at all of its "
                "sites under any oxidation pattern (with a minority fraction > 0 it needs two)"
            )
        group_mask &= combo_valid[:, None, :, None]
        element_mask[rows] = group_mask[c, g]
        element_mask &= np.repeat(combo_valid, n_atoms, axis=0)[:, :, None]
        max_species = np.array([limits[name].max_species for name in names], dtype=np.int64)
        windows = [limits[name].fraction for name in names]
        return {
            "site_group": site_group,
            "group_mask": group_mask,
            "group_size": size,
            "minority_low": low,
            "minority_high": high,
            "max_species": max_species,
            "windowed": np.array([w is not None for w in windows]),
            "fraction_low": np.array([w[0] if w else 0.0 for w in windows], dtype=np.float32),
            "fraction_high": np.array([w[1] if w else 1.0 for w in windows], dtype=np.float32),
            "names": np.array(names, dtype=object),
        }

    def _register_shared(self, tables: dict[str, np.ndarray], generator: torch.Generator) -> None:
        """Buffers and parameters of the shared groups (drawn after every other parameter, so the default
        parametrisation and its random draws are those of a space without limits).

        ``slot_logits [B, G, S, 98]``: element logits of slot s (0 = host) of group g in crystal c;
        ``slot_choice [N, S]``: each site's slot logits, initialised at :data:`INIT_TEMPERATURE` so that the soft
        minority fraction starts at the window's centre (without a window: every slot alike).
        """
        names = tables["names"]
        n_slots = int(tables["max_species"].max())
        self.group_names = tuple(str(n) for n in names)
        self.n_groups = len(names)
        self.n_slots = n_slots
        self.CRYSTAL_FIELDS = (*type(self).CRYSTAL_FIELDS, "slot_logits", "group_mask", "group_size", "minority_low",
                               "minority_high")  # fmt: skip
        self.ATOM_FIELDS = (*type(self).ATOM_FIELDS, "slot_choice", "site_group")
        self.register_buffer("site_group", torch.as_tensor(tables["site_group"]))
        self.register_buffer("group_mask", torch.as_tensor(tables["group_mask"]))  # [B, G, K, 98]
        self.register_buffer("group_size", torch.as_tensor(tables["group_size"]))  # [B, G]
        self.register_buffer("minority_low", torch.as_tensor(tables["minority_low"]))  # [B, G] sites
        self.register_buffer("minority_high", torch.as_tensor(tables["minority_high"]))  # [B, G] sites
        slot_valid = np.arange(n_slots)[None, :] < tables["max_species"][:, None]
        self.register_buffer("slot_valid", torch.as_tensor(slot_valid))  # [G, S]
        self.register_buffer("windowed", torch.as_tensor(tables["windowed"]))  # [G]
        self.register_buffer("fraction_low", torch.as_tensor(tables["fraction_low"]))  # [G]
        self.register_buffer("fraction_high", torch.as_tensor(tables["fraction_high"]))  # [G]
        shape = (self.n_crystals, self.n_groups, n_slots, N_ELEMENTS)
        noise = self.settings.logit_noise
        self.slot_logits = nn.Parameter(noise * torch.randn(shape, generator=generator))
        self.slot_choice = nn.Parameter(self._initial_slot_choice(generator))

    def _initial_slot_choice(self, generator: torch.Generator) -> Tensor:
        """``[N, S]`` initial slot logits: host share 1 − f₀ with f₀ the window's centre (else 1 − 1/k), the
        substituent slots sharing f₀ equally; plus the usual logit noise."""
        group = self.site_group.clamp_min(0)
        k = self.slot_valid.sum(dim=1).float()[group]  # [N]
        centre = 0.5 * (self.fraction_low + self.fraction_high)[group]
        f0 = torch.where(self.windowed[group], centre, 1.0 - 1.0 / k).clamp(1e-3, 1.0 - 1e-3)
        others = (f0 / (k - 1).clamp_min(1.0))[:, None].expand(-1, self.n_slots)
        share = torch.cat([(1.0 - f0)[:, None], others[:, 1:]], dim=1)
        logits = INIT_TEMPERATURE * torch.log(share)
        logits = torch.where((self.site_group >= 0)[:, None], logits, torch.zeros_like(logits))
        noise = self.settings.logit_noise * torch.randn(logits.shape, generator=generator)
        return logits + noise.to(logits.device)

    def composition_parameters(self) -> tuple[str, ...]:
        """Names of the composition parameters besides ``element_logits`` and ``combo_logits`` (the optimiser adds
        them to its groups at the composition rate): the shared groups' slot logits, or none without limits."""
        return ("slot_logits", "slot_choice") if self.n_groups else ()

    @torch.no_grad()
    def fresh_composition(self, donors: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        """Re-initialised shared-group parameters for the receivers of ``donors`` (copy-and-mutate restarting the
        composition on a donor's geometry): field → rows, as ``copy_crystals``'s ``overwrite``; empty without
        shared groups."""
        if not self.n_groups:
            return {}
        donors = torch.as_tensor(donors, device=self.n_atoms.device).long()
        shape = (len(donors), self.n_groups, self.n_slots, N_ELEMENTS)
        slot_logits = self.settings.logit_noise * torch.randn(shape, generator=generator)
        initial = self._initial_slot_choice(generator)
        return {"slot_logits": slot_logits, "slot_choice": initial[self.site_rows(donors)]}

    @property
    def n_crystals(self) -> int:
        """Number of crystals B."""
        return int(self.n_atoms.shape[0])

    # ---- geometry -------------------------------------------------------------------------------------------
    def lengths(self) -> Tensor:
        """``[B, 3]`` lattice lengths in Å."""
        return _bounded(self.length_raw, self.length_low, self.length_high)

    def angles(self) -> Tensor:
        """``[B, 3]`` angles in degrees (template values where angles are frozen)."""
        free = _bounded(self.angle_raw, self.angle_low, self.angle_high)
        return torch.where(self.free_angles[:, None], free, self.angles0)

    def lattice(self) -> Tensor:
        """``[B, 3, 3]`` lattice matrices (rows), Å."""
        return lattice_from_parameters(self.lengths(), self.angles())

    def frac_coords(self) -> Tensor:
        """``[N, 3]`` unwrapped fractional coordinates within the template's bound."""
        finite = torch.isfinite(self.coord_bound)[:, None]
        # A finite stand-in for unbounded sites: inf·tanh(·) would give NaN gradients through torch.where.
        bound = torch.where(finite, self.coord_bound[:, None], torch.ones_like(self.coord_bound[:, None]))
        displacement = torch.where(finite, bound * torch.tanh(self.coord_raw), self.coord_raw)
        return self.frac0 + displacement

    # ---- composition ----------------------------------------------------------------------------------------
    def combo_probs(self, temperature: float) -> Tensor:
        """``[B, K]`` P(k) at temperature T."""
        logits = (self.combo_logits / temperature).masked_fill(~self.combo_valid, NEG_INF)
        return torch.softmax(logits, dim=-1)

    def conditional_probs(self, temperature: float) -> Tensor:
        """``[N, K, 98]`` P(e | i, k); rows of invalid patterns are zero."""
        return self._conditional(temperature)[0]

    def _conditional(self, temperature: float) -> tuple[Tensor, SharedChoice | None]:
        """P(e | i, k) and, with shared groups, their soft choice (whose sites' rows it replaces)."""
        site_valid = self.combo_valid[self.crystal_idx][:, :, None]  # [N, K, 1]
        # Invalid patterns are left unmasked (no all −∞ rows, hence no NaN) and zeroed afterwards.
        logits = (self.element_logits[:, None, :] / temperature).masked_fill(~self.element_mask & site_valid, NEG_INF)
        conditional = torch.softmax(logits, dim=-1) * site_valid
        if not self.n_groups:
            return conditional, None
        shared = self.shared_choice(temperature)
        return conditional.index_put((shared.rows,), shared.site_probs()), shared

    def shared_choice(self, temperature: float) -> SharedChoice:
        """The soft choice of the shared groups: slot elements ``softmax(slot_logits / T)`` over the elements the
        group allows under each pattern, and per site ``softmax(slot_choice / T)`` over the group's slots."""
        rows = torch.nonzero(self.site_group >= 0).flatten()
        crystal, group = self.crystal_idx[rows], self.site_group[rows]
        mask = self.group_mask[:, :, None]  # [B, G, 1, K, 98]
        filled = mask.any(dim=-1, keepdim=True)
        logits = (self.slot_logits[:, :, :, None, :] / temperature).masked_fill(~mask & filled, NEG_INF)
        slot_probs = torch.softmax(logits, dim=-1) * filled  # [B, G, S, K, 98]
        choice = (self.slot_choice[rows] / temperature).masked_fill(~self.slot_valid[group], NEG_INF)
        return SharedChoice(rows, crystal, group, torch.softmax(choice, dim=-1), slot_probs)

    def realize(self, temperature: float) -> SoftDesign:
        """Soft batch at temperature T (differentiable in every parameter)."""
        combo = self.combo_probs(temperature)  # [B, K]
        conditional, shared = self._conditional(temperature)  # [N, K, 98]
        site_combo = combo[self.crystal_idx]  # [N, K]
        probs = torch.einsum("nk,nke->ne", site_combo, conditional)
        radius = torch.einsum("nk,nke,nke->n", site_combo, conditional, self.site_radii)
        crystals = CrystalBatch(self.lattice(), self.frac_coords(), probs, self.crystal_idx, self.n_atoms)
        penalty = self.sublattice_penalty(shared, combo) if shared is not None else None
        return SoftDesign(crystals, combo, self.tolerance_factor(radius), radius, penalty)

    def sublattice_penalty(self, shared: SharedChoice, combo: Tensor) -> Tensor | None:
        """``[B]`` soft penalty of the fraction windows, or None when no group has one.

        Per windowed group: :data:`FRACTION_WEIGHT` × the distance of the soft minority fraction f = mean over its
        sites of (1 − P(host slot)) from the window; with a lower bound > 0 also :data:`OVERLAP_WEIGHT` × the
        probability that a substituent slot picks the host's element (which would make it no substituent).
        """
        if not bool(self.windowed.any()):
            return None
        minority = torch.zeros(self.n_crystals, self.n_groups, device=combo.device)
        minority = minority.index_put((shared.crystal, shared.group), 1.0 - shared.weights[:, 0], accumulate=True)
        present = self.group_size > 0
        fraction = minority / self.group_size.clamp_min(1)
        outside = torch.relu(self.fraction_low - fraction) + torch.relu(fraction - self.fraction_high)
        active = present & self.windowed[None, :]
        penalty = FRACTION_WEIGHT * torch.where(active, outside, torch.zeros_like(outside)).sum(dim=1)
        host = shared.slot_probs[:, :, :1]  # [B, G, 1, K, 98]
        overlap = torch.einsum("bgske,bk->bgs", host * shared.slot_probs, combo)[:, :, 1:]  # [B, G, S-1]
        needs = active & (self.fraction_low > 0)[None, :]
        overlap = overlap * self.slot_valid[None, :, 1:] * needs[:, :, None]
        return penalty + OVERLAP_WEIGHT * overlap.sum(dim=(1, 2))

    @torch.no_grad()
    def discretize(self) -> DiscreteDesign:
        """Argmax pattern and elements; coordinates wrapped into [0, 1)."""
        combo = self.combo_logits.masked_fill(~self.combo_valid, NEG_INF).argmax(dim=-1)  # [B]
        site_combo = combo[self.crystal_idx]
        rows = torch.arange(len(site_combo), device=site_combo.device)
        logits = self.element_logits.masked_fill(~self.element_mask[rows, site_combo], NEG_INF)
        species = logits.argmax(dim=-1)
        if self.n_groups:
            species = self._shared_species(combo, species)
        ox_states = self.ox_states[rows, site_combo]
        radius = self.site_radii[rows, site_combo, species]
        # The discrete batch is float64 so that written structures carry exact 90° angles and clean coordinates.
        lattice = lattice_from_parameters(self.lengths().double(), self.angles().double())
        frac = torch.remainder(self.frac_coords().detach().double(), 1.0)
        crystals = CrystalBatch.from_species(lattice, frac, species, self.n_atoms)
        return DiscreteDesign(crystals, combo, ox_states, self.tolerance_factor(radius), radius)

    @torch.no_grad()
    def composition_keys(self) -> list[tuple[int, ...]]:
        """Per crystal, its discrete composition as a hashable key: one code per site for (pattern index, site role,
        element index), sorted. Two crystals with the same key hold the same elements on the same sublattices under
        the same pattern (the order of the sites within a sublattice is ignored)."""
        design = self.discretize()
        species = design.crystals.species_probs.argmax(dim=-1)
        roles = self.site_roles.to(species)
        code = (design.combo[self.crystal_idx].to(species) * (int(roles.max()) + 1) + roles) * N_ELEMENTS + species
        order = torch.argsort(code, stable=True)
        order = order[torch.argsort(self.crystal_idx[order], stable=True)]  # by crystal, codes sorted within
        return [tuple(part.tolist()) for part in torch.split(code[order], self.n_atoms.tolist())]

    @torch.no_grad()
    def _shared_species(self, combo: Tensor, species: Tensor) -> Tensor:
        """``species`` with the shared groups' sites replaced by their discrete choice under pattern ``combo``.

        Each slot takes its argmax element among those the group allows under the chosen pattern, each site its
        argmax slot; then every windowed group is projected into its window of minority sites: surplus minority
        sites with the highest host preference join the host, or (too few) the host sites with the highest
        preference for the strongest substituent slot join it (a substituent slot on the host's own element first
        takes its next-best element). At most ``max_species`` elements per group, by construction.
        """
        n_groups = self.n_groups
        crystals = torch.arange(self.n_crystals, device=combo.device)
        rows = torch.nonzero(self.site_group >= 0).flatten()
        gid = self.crystal_idx[rows] * n_groups + self.site_group[rows]  # flat (crystal, group) index
        allowed = self.group_mask[crystals, :, combo].reshape(-1, N_ELEMENTS)  # [B·G, 98]
        slot_logits = self.slot_logits.reshape(-1, self.n_slots, N_ELEMENTS).masked_fill(~allowed[:, None], NEG_INF)
        slot_element = slot_logits.argmax(dim=-1)  # [B·G, S]
        valid = self.slot_valid[self.site_group[rows]]
        weights = torch.softmax(self.slot_choice[rows].masked_fill(~valid, NEG_INF), dim=-1)  # [n, S]
        slot = weights.argmax(dim=-1)
        low, high = self.minority_low.reshape(-1), self.minority_high.reshape(-1)
        n_flat = len(low)
        host_element, _ = minority_counts(gid, slot_element[gid, slot], n_flat)  # most common element
        counts = torch.zeros(n_flat, self.n_slots, dtype=torch.long, device=combo.device)
        counts.index_put_((gid, slot), torch.ones_like(slot), accumulate=True)
        on_host = slot_element == host_element[:, None]
        host = torch.where(on_host, counts, torch.full_like(counts, -1)).argmax(dim=-1)  # its most used slot

        def minority(slots: Tensor) -> tuple[Tensor, Tensor]:
            is_minority = slot_element[gid, slots] != host_element[gid]
            return is_minority, torch.zeros(n_flat, dtype=torch.long, device=combo.device).index_add_(0, gid, is_minority.long())

        is_minority, count = minority(slot)
        surplus = (count - high).clamp_min(0)
        rank = rank_within(gid, weights[torch.arange(len(rows)), host[gid]], is_minority)
        slot = torch.where(is_minority & (rank < surplus[gid]), host[gid], slot)
        deficit = (low - count).clamp_min(0)
        if bool((deficit > 0).any()):
            mass = torch.zeros(n_flat, self.n_slots, device=combo.device).index_add_(0, gid, weights)
            slot_ok = self.slot_valid.repeat(self.n_crystals, 1)
            slot_ok[torch.arange(n_flat), host] = False
            target = mass.masked_fill(~slot_ok, NEG_INF).argmax(dim=-1)  # the strongest substituent slot
            renew = (deficit > 0) & (slot_element.gather(1, target[:, None]).squeeze(1) == host_element)
            slot = torch.where(renew[gid] & (slot == target[gid]), host[gid], slot)  # same element: host already
            others = slot_logits[torch.arange(n_flat), target].clone()
            others[torch.arange(n_flat), host_element] = NEG_INF
            replaced = torch.where(renew, others.argmax(dim=-1), slot_element[torch.arange(n_flat), target])
            slot_element[torch.arange(n_flat), target] = replaced
            is_minority, count = minority(slot)
            deficit = (low - count).clamp_min(0)
            rank = rank_within(gid, weights[torch.arange(len(rows)), target[gid]], ~is_minority)
            slot = torch.where(~is_minority & (rank < deficit[gid]), target[gid], slot)
        out = species.clone()
        out[rows] = slot_element[gid, slot]
        return out

    def tolerance_factor(self, site_radius: Tensor) -> Tensor:
        """``[B]`` t = (r_A + r_X) / (√2 (r_B + r_X)) from per-site radii (Å) averaged per role; NaN without roles."""
        return tolerance_factor(site_radius, self.site_roles, self.crystal_idx, self.n_crystals)

    # ---- discrete choices and setting a state ---------------------------------------------------------------
    def choices(self) -> DiscreteChoices:
        """The admissible patterns, each site's oxidation state per pattern and the allowed elements."""
        return DiscreteChoices(self.combo_valid, self.ox_states, self.element_mask)

    @torch.no_grad()
    def set_composition(self, patterns: Tensor, species: Tensor, margin: float = 1.0) -> None:
        """Make pattern ``patterns[c]`` and element ``species[i]`` (atomic number − 1) the argmax choices.

        Logits become ``margin`` for the chosen entries and 0 elsewhere (at the optimiser's temperatures ≤ 1e-2 the
        soft realisation is then one-hot to within e^(−margin/T)). ValueError if a pattern is not admissible for
        its crystal or an element is not allowed at its site under the chosen pattern.
        """
        device = self.n_atoms.device
        patterns = torch.as_tensor(patterns, device=device).long()
        species = torch.as_tensor(species, device=device).long()
        if patterns.shape != (self.n_crystals,) or species.shape != (len(self.crystal_idx),):
            raise ValueError(f"expected patterns [{self.n_crystals}] and species [{len(self.crystal_idx)}]")
        crystals = torch.arange(self.n_crystals, device=device)
        sites = torch.arange(len(species), device=device)
        self._check_composition(crystals, sites, patterns, species)
        if self.n_groups:
            self._set_shared(species, margin)
        self.combo_logits.zero_()
        self.combo_logits[crystals, patterns] = margin
        self.element_logits.zero_()
        self.element_logits[sites, species] = margin

    @torch.no_grad()
    def set_composition_rows(self, crystals: Tensor, patterns: Tensor, species: Tensor, margin: float = 1.0) -> None:
        """:meth:`set_composition` for the crystals ``crystals`` only (``patterns [M]``, ``species`` of their sites
        crystal after crystal); every other crystal keeps its logits. ValueError in a space with sublattice limits
        (their slot logits are shared per crystal group; use :meth:`set_composition`)."""
        device = self.n_atoms.device
        crystals = torch.as_tensor(crystals, device=device).long()
        patterns = torch.as_tensor(patterns, device=device).long()
        species = torch.as_tensor(species, device=device).long()
        sites = self.site_rows(crystals)
        if patterns.shape != crystals.shape or species.shape != sites.shape:
            raise ValueError(f"expected patterns [{len(crystals)}] and species [{len(sites)}]")
        if self.n_groups:
            raise ValueError("set_composition_rows does not support sublattice limits")
        self._check_composition(crystals, sites, patterns, species)
        self.combo_logits[crystals] = 0.0
        self.combo_logits[crystals, patterns] = margin
        self.element_logits[sites] = 0.0
        self.element_logits[sites, species] = margin

    def _check_composition(self, crystals: Tensor, sites: Tensor, patterns: Tensor, species: Tensor) -> None:
        """ValueError unless every pattern is admissible for its crystal and every element allowed at its site."""
        if not self.combo_valid[crystals, patterns].all():
            raise ValueError("a chosen oxidation pattern is not admissible for its crystal")
        site_pattern = torch.repeat_interleave(patterns, self.n_atoms[crystals])
        if not self.element_mask[sites, site_pattern, species].all():
            raise ValueError("a chosen element is not allowed at its site under the chosen pattern")

    @torch.no_grad()
    def _set_shared(self, species: Tensor, margin: float) -> None:
        """Slot logits that make ``species`` the shared groups' discrete choice: each group's elements, most
        common first (the host), take its slots. ValueError if a group holds more elements than its limit or its
        minority count lies outside its window."""
        rows = torch.nonzero(self.site_group >= 0).flatten()
        crystal, group = self.crystal_idx[rows], self.site_group[rows]
        gid = crystal * self.n_groups + group
        keys, inverse, counts = torch.unique(gid * N_ELEMENTS + species[rows], return_inverse=True, return_counts=True)
        key_group = keys // N_ELEMENTS
        slot_of_key = rank_within(key_group, counts.double(), torch.ones_like(keys, dtype=torch.bool))
        limit = self.slot_valid.sum(dim=1)[key_group % self.n_groups]
        if bool((slot_of_key >= limit).any()):
            name = self.group_names[int(key_group[slot_of_key >= limit][0]) % self.n_groups]
            raise ValueError(f"a chosen composition puts more elements on sublattice {name} than its max_species")
        _, minority = minority_counts(gid, species[rows], self.n_crystals * self.n_groups)
        low, high = self.minority_low.reshape(-1), self.minority_high.reshape(-1)
        if bool(((minority < low) | (minority > high)).any()):
            raise ValueError("a chosen composition puts a sublattice's minority fraction outside its window")
        slot_logits = torch.zeros_like(self.slot_logits).reshape(-1, self.n_slots, N_ELEMENTS)
        slot_logits[key_group, slot_of_key, keys % N_ELEMENTS] = margin
        self.slot_logits.copy_(slot_logits.reshape(self.slot_logits.shape))
        self.slot_choice.zero_()
        self.slot_choice[rows, slot_of_key[inverse]] = margin

    @torch.no_grad()
    def set_geometry(self, lattice: Tensor, frac_coords: Tensor, eps: float = 1e-4) -> None:
        """Set lattice (``[B, 3, 3]`` rows, Å) and fractional coordinates (``[N, 3]``), clamped into the bounds.

        Lengths are clamped into ``[length_low, length_high]`` and free angles into their bounds (frozen angles keep
        the template's values); each site's displacement from its template position is taken to the nearest
        periodic image and clamped to ± its coordinate bound. ``eps`` keeps the bounded parameters finite (values
        within ``eps`` of the span of a bound are set just inside it).
        """
        lattice = torch.as_tensor(lattice, device=self.n_atoms.device).to(self.length_raw.dtype)
        frac = torch.as_tensor(frac_coords, device=self.n_atoms.device).to(self.coord_raw.dtype)
        if lattice.shape != (self.n_crystals, 3, 3) or frac.shape != self.coord_raw.shape:
            raise ValueError(f"expected lattice [{self.n_crystals}, 3, 3] and frac_coords {list(self.coord_raw.shape)}")
        lengths, angles = lattice_to_parameters(lattice)
        self.length_raw.copy_(_raw_bounded(lengths, self.length_low, self.length_high, eps))
        free = self.free_angles[:, None].expand_as(angles)
        angle_raw = _raw_bounded(angles, self.angle_low, self.angle_high, eps)
        self.angle_raw.copy_(torch.where(free, angle_raw, self.angle_raw))
        displacement = periodic_displacement(frac, self.frac0)
        finite = torch.isfinite(self.coord_bound)[:, None]
        bound = torch.where(finite, self.coord_bound[:, None], torch.ones_like(self.coord_bound[:, None]))
        scaled = (displacement / bound).clamp(-1.0 + eps, 1.0 - eps)
        self.coord_raw.copy_(torch.where(finite, torch.atanh(scaled), displacement))

    def set_from(self, crystals: CrystalBatch, eps: float = 1e-4) -> None:
        """:meth:`set_geometry` from a batch with this space's crystals and site order (e.g. relaxed structures)."""
        if not torch.equal(crystals.n_atoms.to(self.n_atoms.device), self.n_atoms):
            raise ValueError("the batch's atom counts differ from the design space's")
        self.set_geometry(crystals.lattice, crystals.frac_coords, eps)

    # ---- row bookkeeping for copy-and-mutate and quarantine -------------------------------------------------------
    def row_owner(self, name: str) -> Tensor:
        """Crystal index of every row of field ``name`` (a name of :attr:`ATOM_FIELDS` or :attr:`CRYSTAL_FIELDS`)."""
        if name in self.ATOM_FIELDS:
            return self.crystal_idx
        return torch.arange(self.n_crystals, device=self.n_atoms.device)

    def site_rows(self, crystals: Tensor) -> Tensor:
        """Site indices of ``crystals`` (``[M]`` crystal indices), crystal after crystal."""
        crystals = torch.as_tensor(crystals, device=self.n_atoms.device).long()
        offsets = self.n_atoms.cumsum(0) - self.n_atoms
        counts = self.n_atoms[crystals]
        starts = torch.repeat_interleave(offsets[crystals], counts)
        within = torch.arange(int(counts.sum()), device=counts.device) - torch.repeat_interleave(counts.cumsum(0) - counts, counts)
        return starts + within

    @torch.no_grad()
    def copy_crystals(
        self,
        donors: Tensor,
        receivers: Tensor,
        noise: dict[str, Tensor] | None = None,
        overwrite: dict[str, Tensor] | None = None,
    ) -> None:
        """Copy every tagged field of crystal ``donors[j]`` into crystal ``receivers[j]`` (one vectorised write).

        Args:
            donors, receivers: ``[M]`` crystal indices; ``n_atoms[donors] == n_atoms[receivers]``; receivers distinct
                and none of them a donor.
            noise: field → tensor added to the copied rows (shape of the receivers' rows: ``[M, …]`` or
                ``[sites of receivers, …]``).
            overwrite: field → tensor written instead of the donor's rows (same shapes).
        """
        donors = torch.as_tensor(donors, device=self.n_atoms.device).long()
        receivers = torch.as_tensor(receivers, device=self.n_atoms.device).long()
        if not torch.equal(self.n_atoms[donors], self.n_atoms[receivers]):
            raise ValueError("copy_crystals needs donors and receivers with equal atom counts")
        noise, overwrite = noise or {}, overwrite or {}
        src_sites, dst_sites = self.site_rows(donors), self.site_rows(receivers)
        for name in (*self.CRYSTAL_FIELDS, *self.ATOM_FIELDS):
            src, dst = (donors, receivers) if name in self.CRYSTAL_FIELDS else (src_sites, dst_sites)
            field = getattr(self, name)
            if name in overwrite:
                field[dst] = overwrite[name].to(field.device, field.dtype)
            elif name in noise:
                field[dst] = field[src] + noise[name].to(field.device)
            else:
                field[dst] = field[src]
