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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from smoacs.chem.elements import N_ELEMENTS
from smoacs.chem.oxidation import allowed_elements
from smoacs.chem.radii import ox_index, radius_table
from smoacs.crystal.batch import CrystalBatch
from smoacs.crystal.lattice import lattice_from_parameters, lattice_to_parameters
from smoacs.objectives.derived import tolerance_factor
from smoacs.templates.base import Template

NEG_INF = float("-inf")


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
    """

    length_bounds: tuple[float, float] = (2.0, 10.0)
    angle_bounds: tuple[float, float] = (60.0, 120.0)
    ionic_masks: bool = True
    logit_noise: float = 1e-3
    relative_length_bounds: tuple[float, float] | None = None
    relative_angle_bounds: float | None = None
    default_coord_bound: float | None = None


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
    """

    crystals: CrystalBatch
    combo_probs: Tensor
    tolerance: Tensor
    site_radius: Tensor | None = None


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
            if not 0 < f_lo < 1 < f_hi:
                raise ValueError(f"relative_length_bounds must satisfy 0 < min < 1 < max, got {(f_lo, f_hi)}")
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
            if not width > 0:
                raise ValueError(f"relative_angle_bounds must be > 0°, got {width}")
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
        element_mask = self._element_mask(ox, combo_valid, n_atoms)
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
        self.to(device)

    @staticmethod
    def _supercell_factor(template: Template) -> float:
        """n for an n×n×n perovskite supercell (5n³ sites), else 1."""
        if not template.is_perovskite:
            return 1.0
        return float(round((template.n_atoms / 5) ** (1 / 3)))

    def _element_mask(self, ox: np.ndarray, combo_valid: np.ndarray, n_atoms: np.ndarray) -> np.ndarray:
        """``[N, K, 98]`` bool: elements allowed at each site under each pattern (all False for invalid patterns)."""
        table = {}
        mask = np.zeros((ox.shape[0], ox.shape[1], N_ELEMENTS), dtype=bool)
        site_valid = np.repeat(combo_valid, n_atoms, axis=0)
        for state in np.unique(ox):
            if state == 0:
                continue
            table[state] = allowed_elements(int(state), ionic=self.settings.ionic_masks)
            mask[ox == state] = table[state]
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
                raise ValueError(f"templates with no admissible oxidation pattern: {', '.join(names[:5])}")
        return mask

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
        site_valid = self.combo_valid[self.crystal_idx][:, :, None]  # [N, K, 1]
        # Invalid patterns are left unmasked (no all −∞ rows, hence no NaN) and zeroed afterwards.
        logits = (self.element_logits[:, None, :] / temperature).masked_fill(~self.element_mask & site_valid, NEG_INF)
        return torch.softmax(logits, dim=-1) * site_valid

    def realize(self, temperature: float) -> SoftDesign:
        """Soft batch at temperature T (differentiable in every parameter)."""
        combo = self.combo_probs(temperature)  # [B, K]
        conditional = self.conditional_probs(temperature)  # [N, K, 98]
        site_combo = combo[self.crystal_idx]  # [N, K]
        probs = torch.einsum("nk,nke->ne", site_combo, conditional)
        radius = torch.einsum("nk,nke,nke->n", site_combo, conditional, self.site_radii)
        crystals = CrystalBatch(self.lattice(), self.frac_coords(), probs, self.crystal_idx, self.n_atoms)
        return SoftDesign(crystals, combo, self.tolerance_factor(radius), radius)

    @torch.no_grad()
    def discretize(self) -> DiscreteDesign:
        """Argmax pattern and elements; coordinates wrapped into [0, 1)."""
        combo = self.combo_logits.masked_fill(~self.combo_valid, NEG_INF).argmax(dim=-1)  # [B]
        site_combo = combo[self.crystal_idx]
        rows = torch.arange(len(site_combo), device=site_combo.device)
        logits = self.element_logits.masked_fill(~self.element_mask[rows, site_combo], NEG_INF)
        species = logits.argmax(dim=-1)
        ox_states = self.ox_states[rows, site_combo]
        radius = self.site_radii[rows, site_combo, species]
        # The discrete batch is float64 so that written structures carry exact 90° angles and clean coordinates.
        lattice = lattice_from_parameters(self.lengths().double(), self.angles().double())
        frac = torch.remainder(self.frac_coords().detach().double(), 1.0)
        crystals = CrystalBatch.from_species(lattice, frac, species, self.n_atoms)
        return DiscreteDesign(crystals, combo, ox_states, self.tolerance_factor(radius), radius)

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
        if not self.combo_valid[torch.arange(self.n_crystals, device=device), patterns].all():
            raise ValueError("a chosen oxidation pattern is not admissible for its crystal")
        site_pattern = patterns[self.crystal_idx]
        sites = torch.arange(len(species), device=device)
        if not self.element_mask[sites, site_pattern, species].all():
            raise ValueError("a chosen element is not allowed at its site under the chosen pattern")
        self.combo_logits.zero_()
        self.combo_logits[torch.arange(self.n_crystals, device=device), patterns] = margin
        self.element_logits.zero_()
        self.element_logits[sites, species] = margin

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
        displacement = torch.remainder(frac - self.frac0 + 0.5, 1.0) - 0.5
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
