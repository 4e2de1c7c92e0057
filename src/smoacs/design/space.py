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

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from smoacs.chem.elements import N_ELEMENTS
from smoacs.chem.oxidation import allowed_elements
from smoacs.chem.radii import ox_index, radius_table
from smoacs.crystal.batch import CrystalBatch
from smoacs.crystal.lattice import lattice_from_parameters
from smoacs.templates.base import NO_ROLE, Template

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


@dataclass
class SoftDesign:
    """A realisation at temperature T: the soft crystal batch plus quantities derived from the composition.

    Attributes:
        crystals: batch with soft ``species_probs``.
        combo_probs: ``[n_crystals, K]`` P(k).
        tolerance: ``[n_crystals]`` Goldschmidt tolerance factor from soft Shannon radii (NaN without A/B/X roles).
    """

    crystals: CrystalBatch
    combo_probs: Tensor
    tolerance: Tensor


@dataclass
class DiscreteDesign:
    """Argmax realisation: a one-hot batch with wrapped coordinates and its chosen oxidation pattern.

    Attributes:
        crystals: one-hot float64 batch, coordinates wrapped into [0, 1).
        combo: ``[n_crystals]`` chosen pattern index.
        ox_states: ``[n_atoms]`` oxidation state of every site under the chosen pattern.
        tolerance: ``[n_crystals]`` tolerance factor from the chosen elements' radii (NaN without roles).
    """

    crystals: CrystalBatch
    combo: Tensor
    ox_states: Tensor
    tolerance: Tensor


def _logit(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 1e-4, 1 - 1e-4)
    return np.log(x / (1 - x))


def _bounded(raw: Tensor, low: Tensor, high: Tensor) -> Tensor:
    return low + (high - low) * torch.sigmoid(raw)


class DesignSpace(nn.Module):
    """Learnable lattice, coordinates and composition for a batch of templates.

    Parameters (all per crystal or per site, so copy-and-mutate and quarantine act on rows):
    ``length_raw [B,3]``, ``angle_raw [B,3]``, ``coord_raw [N,3]``, ``element_logits [N,98]``, ``combo_logits [B,K]``.
    """

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
        return SoftDesign(crystals, combo, self.tolerance_factor(radius))

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
        return DiscreteDesign(crystals, combo, ox_states, self.tolerance_factor(radius))

    def tolerance_factor(self, site_radius: Tensor) -> Tensor:
        """``[B]`` t = (r_A + r_X) / (√2 (r_B + r_X)) from per-site radii (Å) averaged per role; NaN without roles."""
        has_role = self.site_roles != NO_ROLE
        index = self.crystal_idx * 3 + self.site_roles.clamp_min(0)
        zeros = torch.zeros(self.n_crystals * 3, dtype=site_radius.dtype, device=site_radius.device)
        total = zeros.index_add(0, index[has_role], site_radius[has_role])
        count = zeros.index_add(0, index[has_role], torch.ones_like(site_radius[has_role]))
        mean = (total / count).view(-1, 3)  # 0/0 → NaN for crystals without roles
        r_a, r_b, r_x = mean.unbind(-1)
        return (r_a + r_x) / (math.sqrt(2.0) * (r_b + r_x))

    # ---- row bookkeeping for copy-and-mutate and quarantine -------------------------------------------------------
    def row_owner(self, name: str) -> Tensor:
        """Crystal index of every row of parameter ``name``."""
        if name in ("coord_raw", "element_logits"):
            return self.crystal_idx
        return torch.arange(self.n_crystals, device=self.n_atoms.device)
