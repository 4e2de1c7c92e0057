"""The Crystalformer network (Taniai et al., ICLR 2024), real-space path, in plain differentiable PyTorch.

Parameter names follow the official ``Latticeformer`` class (``omron-sinicx/crystalformer``, MIT), so an official
state dict loads as is; the code is written from the paper and the fixture description, not copied.

Every atom attends to every atom of its crystal and to all their periodic images ``n ∈ {-R..R}³`` (``R =
lattice_range``): the attention logit of the pair (i, j) adds ``φ_ijh = log Σ_n exp(a_ih d²_ijn)``, a Gaussian
distance decay whose width ``a_ih < 0`` depends on the query, and each value gets a position encoding
``ψ_ijh = Σ_n softmax_n(a_ih d²_ijn) g(d_ijn)`` (64 Gaussians of the distance, projected per head). Above ``chunk``
pairs the image sums run in two chunked passes (the decay term φ; then the attention-weighted value encoding summed
into the query atoms), custom autograd functions that keep only their inputs and recompute chunk by chunk in the
backward pass, so memory grows as ``pairs × heads`` rather than ``pairs × images × (heads + Gaussians)``.

Unlike the official custom autograd function, gradients include the derivative of the Gaussian basis with respect to
the distance, so geometry gradients are exact (first derivatives only: the backward passes are not differentiable).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from smoacs.errors import PredictorError

N_ELEMENTS = 98
_DIST_EPS = 1e-20  # Å², below which a squared distance is the self image (safe square root)


@dataclass(frozen=True)
class CrystalformerConfig:
    """The hyper-parameters the real-space Crystalformer uses, under the official config key names.

    Attributes:
        num_layers: attention blocks.
        model_dim: feature width.
        ff_dim: width of the feed-forward hidden layer.
        head_num: attention heads (head width ``model_dim / head_num``).
        embedding_dim: hidden widths of the output MLP.
        lattice_range: image range R, images ``n ∈ {-R..R}³``.
        scale_real: Gaussian length scale r0 in Å, one value or one per layer.
        gauss_lb_real: lower bound b of the positive map of the decay width.
        positive_func: ``"elu=β"``, the positive map ``(1-b)·elu(α·β/(1-b)) + 1``.
        normalize_gauss: standardise the width logits with the stored ``gauss_scale``.
        value_pe_dist_real: number K of distance Gaussians of the value position encoding.
        value_pe_dist_max: largest Gaussian centre in Å; negative means ``-value_pe_dist_max · r0``.
        value_pe_width_scale: Gaussian width as a multiple of the centre spacing.
        n_targets: outputs of the head.
    """

    num_layers: int = 4
    model_dim: int = 128
    ff_dim: int = 512
    head_num: int = 8
    embedding_dim: tuple[int, ...] = (128,)
    lattice_range: int = 2
    scale_real: tuple[float, ...] = (1.4,)
    gauss_lb_real: float = 0.5
    positive_func: str = "elu=0.1"
    normalize_gauss: bool = True
    value_pe_dist_real: int = 64
    value_pe_dist_max: float = -10.0
    value_pe_width_scale: float = 1.0
    n_targets: int = 1
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    # Official settings this implementation supports, with the only accepted value.
    _FIXED: ClassVar[dict[str, Any]] = {
        "domain": "real",
        "gauss_state": "q",
        "value_pe_headed": True,
        "value_pe_condproj": "no",
        "value_pe_dist_reci": 0,
        "value_pe_wave_real": 0,
        "value_pe_wave_reci": 0,
        "exclude_self": False,
        "norm_func_mode": 0,
        "pooling": "avr",
        "pre_pooling_op": "no",
        "norm_type": "no",
        "use_cgcnn_feat": False,
        "t_fixup_init": True,
        "t_activation": "relu",
        "k_dim": 0,
        "v_dim": 0,
    }

    @classmethod
    def official_keys(cls) -> tuple[str, ...]:
        """The official configuration keys this implementation reads (its fields and the fixed settings)."""
        return (*(f.name for f in fields(cls) if f.name not in ("extra", "n_targets")), *cls._FIXED)

    @classmethod
    def from_official(cls, config: dict[str, Any]) -> CrystalformerConfig:
        """Read an official config dict (``params/latticeformer/*.json`` keys); unsupported settings raise."""
        for key, value in cls._FIXED.items():
            if key in config and config[key] != value and not (key in ("k_dim", "v_dim") and config[key] in (0, None)):
                raise PredictorError(f"Crystalformer setting {key}={config[key]!r} is not supported (only {value!r})")
        targets = config.get("targets", "y")
        n_targets = len(targets) if isinstance(targets, (list, tuple)) else 1
        names = {f.name for f in fields(cls)} - {"extra", "n_targets"}
        kwargs: dict[str, Any] = {k: config[k] for k in names if k in config}
        for key in ("embedding_dim", "scale_real"):
            if key in kwargs:
                value = kwargs[key]
                kwargs[key] = tuple(value) if isinstance(value, (list, tuple)) else (value,)
        extra = {k: v for k, v in config.items() if k not in names}
        return cls(**kwargs, n_targets=n_targets, extra=extra)

    def to_official(self) -> dict[str, Any]:
        """The config as an official-style dict (round-trips through :meth:`from_official`)."""
        out = {**self.extra, **self._FIXED, **asdict(self)}
        out.pop("extra")
        out["embedding_dim"], out["scale_real"] = list(self.embedding_dim), list(self.scale_real)
        n_targets = out.pop("n_targets")
        if n_targets != 1:
            out["targets"] = [f"y{i}" for i in range(n_targets)]
        return out

    @property
    def beta(self) -> float:
        """β of ``positive_func = "elu=β"``."""
        name, _, value = self.positive_func.partition("=")
        if name != "elu":
            raise PredictorError(f"Crystalformer positive_func {self.positive_func!r} is not supported (only elu=β)")
        return float(value) if value else 1.0

    def r0(self, layer: int) -> float:
        """Gaussian length scale of one layer, Å."""
        return self.scale_real[layer] if len(self.scale_real) > 1 else self.scale_real[0]

    @property
    def pe_max(self) -> float:
        """Largest centre of the value-encoding Gaussians, Å."""
        d = self.value_pe_dist_max
        return -d * self.scale_real[0] if d < 0 else d


class _GaussianEncoding(torch.autograd.Function):
    """``ψ[e, h, k] = Σ_m w[e, m, h] · exp(-((d[e, m] - μ_k) / (√2 σ))²)`` with a hand-written, exact backward.

    Equivalent to the plain expression (and checked against it); it avoids autograd's chain of ``[E, M, K]``
    temporaries. The basis is rebuilt in place and its derivative in ``d`` is included (which the official
    implementation omits). First derivatives only.
    """

    @staticmethod
    def forward(ctx, dist: Tensor, weights: Tensor, mu: Tensor, inv_width: float) -> Tensor:  # noqa: ANN001
        basis = (dist[:, :, None] - mu).mul_(inv_width).square_().neg_().exp_()  # [E, M, K]
        ctx.save_for_backward(dist, weights, basis, mu)
        ctx.inv_width = inv_width
        return torch.bmm(weights.transpose(1, 2), basis)  # [E, H, K]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:  # noqa: ANN001
        dist, weights, basis, mu = ctx.saved_tensors
        grad_weights = torch.bmm(basis, grad.transpose(1, 2)) if ctx.needs_input_grad[1] else None
        grad_dist = None
        if ctx.needs_input_grad[0]:
            s = ctx.inv_width
            t = (dist[:, :, None] - mu).mul_(s)
            upstream = torch.bmm(weights, grad)  # [E, M, K]
            grad_dist = upstream.mul_(basis).mul_(t).sum(-1).mul_(-2.0 * s)
        return grad_dist, grad_weights, None, None


def _decay_logits(r: Tensor, a: Tensor, trans: Tensor, crys: Tensor) -> tuple[Tensor, Tensor]:
    """``a d²`` ``[E, M, H]`` and ``d²`` ``[E, M]`` of a chunk of pairs over all images.

    Args:
        r: ``[E, 3]`` pair vectors ``pos_j - pos_i``, Å.
        a: ``[E, H]`` decay coefficients (negative), Å⁻².
        trans: ``[B, M, 3]`` image translations per crystal, Å.
        crys: ``[E]`` crystal of each pair.
    """
    diff = r[:, None, :] + trans[crys]  # [E, M, 3]
    d2 = (diff * diff).sum(-1)
    return d2[:, :, None] * a[:, None, :], d2


def _phi_kernel(r: Tensor, a: Tensor, trans: Tensor, crys: Tensor) -> Tensor:
    """``φ = log Σ_n exp(a d²_n)`` ``[E, H]``: the position term of the attention logits."""
    return torch.logsumexp(_decay_logits(r, a, trans, crys)[0], dim=1)


def _value_kernel(
    r: Tensor, a: Tensor, attn: Tensor, proj: Tensor, trans: Tensor, crys: Tensor, mu: Tensor, inv_width: float
) -> Tensor:
    """``attn · proj(ψ)`` ``[E, H, D]``: each pair's attention-weighted value position encoding.

    ``ψ_h = Σ_n softmax_n(a_h d²_n) g(d_n)`` with the K Gaussians ``g_k(d) = exp(-((d - μ_k) · inv_width)²)``,
    projected per head by ``proj [H, D, K]``; ``attn [E, H]`` are the attention weights of the pairs.
    """
    logits, d2 = _decay_logits(r, a, trans, crys)
    weights = torch.softmax(logits, dim=1)  # [E, M, H]
    dist = torch.sqrt(torch.where(d2 > _DIST_EPS, d2, torch.full_like(d2, _DIST_EPS)))
    psi = _GaussianEncoding.apply(dist, weights, mu, inv_width)  # [E, H, K]
    return attn[:, :, None] * torch.einsum("ehk,hdk->ehd", psi, proj)


def _backward_chunks(
    kernel, sliced: list[Tensor], shared: list[Tensor], needs: tuple[bool, ...], consts, grad_of, n: int, chunk: int,
) -> list[Tensor | None]:  # noqa: ANN001  # fmt: skip
    """Gradients of a chunked kernel: recompute each chunk with a graph and back-propagate ``grad_of(part)``.

    ``kernel(*sliced[part], *shared, *consts(part))``; ``needs`` flags the sliced then shared inputs needing a gradient.
    """
    inputs = [*sliced, *shared]
    grads = [torch.zeros_like(t) if need else None for t, need in zip(inputs, needs, strict=True)]
    n_sliced = len(sliced)
    for k in range(0, n, chunk):
        part = slice(k, k + chunk)
        with torch.enable_grad():
            leaves = [(t[part] if i < n_sliced else t).detach().requires_grad_(need)
                      for i, (t, need) in enumerate(zip(inputs, needs, strict=True))]  # fmt: skip
            out = kernel(*leaves, *consts(part))
            wanted = [leaf for leaf in leaves if leaf.requires_grad]
            chunk_grads = torch.autograd.grad(out, wanted, grad_of(part), allow_unused=True) if wanted else ()
        it = iter(chunk_grads)
        for i, leaf in enumerate(leaves):
            if not leaf.requires_grad:
                continue
            g = next(it)
            if g is not None:
                if i < n_sliced:
                    grads[i][part] += g
                else:
                    grads[i] += g
    return grads


class _PhiChunks(torch.autograd.Function):
    """:func:`_phi_kernel` over chunks of pairs; only the inputs are kept for the backward pass."""

    @staticmethod
    def forward(ctx, r: Tensor, a: Tensor, trans: Tensor, crys: Tensor, chunk: int) -> Tensor:  # noqa: ANN001
        ctx.save_for_backward(r, a, trans, crys)
        ctx.chunk = chunk
        return torch.cat([_phi_kernel(r[k : k + chunk], a[k : k + chunk], trans, crys[k : k + chunk])
                          for k in range(0, len(r), chunk)])  # fmt: skip

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:  # noqa: ANN001
        r, a, trans, crys = ctx.saved_tensors
        g_r, g_a, g_trans = _backward_chunks(
            _phi_kernel, [r, a], [trans], tuple(ctx.needs_input_grad[:3]), lambda part: (crys[part],),
            lambda part: grad[part], len(r), ctx.chunk,
        )  # fmt: skip
        return g_r, g_a, g_trans, None, None


class _ValueChunks(torch.autograd.Function):
    """``Σ_j`` of :func:`_value_kernel` into the query atoms ``[N, H, D]``, chunk by chunk (no per-pair tensor kept)."""

    @staticmethod
    def forward(ctx, r: Tensor, a: Tensor, attn: Tensor, proj: Tensor, trans: Tensor, crys: Tensor, query: Tensor,
                n_atoms: int, mu: Tensor, inv_width: float, chunk: int) -> Tensor:  # noqa: ANN001  # fmt: skip
        ctx.save_for_backward(r, a, attn, proj, trans, crys, query, mu)
        ctx.inv_width, ctx.chunk = inv_width, chunk
        out = r.new_zeros(n_atoms, *proj.shape[:2])
        for k in range(0, len(r), chunk):
            part = slice(k, k + chunk)
            out.index_add_(0, query[part], _value_kernel(r[part], a[part], attn[part], proj, trans, crys[part], mu, inv_width))
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:  # noqa: ANN001
        r, a, attn, proj, trans, crys, query, mu = ctx.saved_tensors
        grads = _backward_chunks(
            _value_kernel, [r, a, attn], [proj, trans], tuple(ctx.needs_input_grad[:5]),
            lambda part: (crys[part], mu, ctx.inv_width), lambda part: grad.index_select(0, query[part]),
            len(r), ctx.chunk,
        )  # fmt: skip
        return (*grads, None, None, None, None, None, None)


@dataclass
class PairIndex:
    """All ordered atom pairs of a batch (i-major within each crystal) and their dense positions.

    Attributes:
        i, j: ``[E]`` global atom indices of query and key.
        crys: ``[E]`` crystal of each pair.
        flat: ``[E]`` position of the pair in a padded ``[B, n_max, n_max]`` array.
        slot: ``[N]`` position of each atom in a padded ``[B, n_max]`` array.
        n_max: largest crystal.
    """

    i: Tensor
    j: Tensor
    crys: Tensor
    flat: Tensor
    slot: Tensor
    n_max: int

    @classmethod
    def build(cls, crystal_idx: Tensor, n_atoms: Tensor) -> PairIndex:
        """Pairs of a batch given each atom's crystal and the crystal sizes."""
        device = n_atoms.device
        n_atoms = n_atoms.long()
        n_max = int(n_atoms.max())
        offsets = torch.cumsum(n_atoms, 0) - n_atoms
        pairs = n_atoms * n_atoms
        crys = torch.repeat_interleave(torch.arange(len(n_atoms), device=device), pairs)
        local = torch.arange(int(pairs.sum()), device=device) - (torch.cumsum(pairs, 0) - pairs)[crys]
        size = n_atoms[crys]
        li, lj = local // size, local % size
        atom_local = torch.arange(len(crystal_idx), device=device) - offsets[crystal_idx]
        return cls(
            i=offsets[crys] + li,
            j=offsets[crys] + lj,
            crys=crys,
            flat=(crys * n_max + li) * n_max + lj,
            slot=crystal_idx * n_max + atom_local,
            n_max=n_max,
        )


class LatticeAttention(nn.Module):
    """Infinitely connected multi-head attention (official ``IndexedLatticeMultiheadAttention`` names)."""

    def __init__(self, config: CrystalformerConfig, layer: int) -> None:
        super().__init__()
        dim, heads = config.model_dim, config.head_num
        if dim % heads:
            raise PredictorError(f"model_dim {dim} is not divisible by head_num {heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.q_proj_weight = nn.Parameter(torch.empty(dim, dim))
        self.k_proj_weight = nn.Parameter(torch.empty(dim, dim))
        self.v_proj_weight = nn.Parameter(torch.empty(dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        self.lattice_pos_weights = nn.Parameter(torch.empty(dim))
        self.pe_dist_proj = nn.Parameter(torch.empty(1, heads, self.head_dim, config.value_pe_dist_real))
        self.gauss_scale = nn.Parameter(torch.zeros(2), requires_grad=False)  # [scale, shift], set on calibration
        self.atten_scale = nn.Parameter(torch.zeros(1), requires_grad=False)  # unused, kept for the key layout
        self.normalize = config.normalize_gauss
        self.lower, self.beta = config.gauss_lb_real, config.beta
        self.r0 = config.r0(layer)
        k = config.value_pe_dist_real
        spacing = config.pe_max / k
        self.register_buffer("mu", torch.arange(1, k + 1, dtype=torch.float32) * spacing, persistent=False)
        self.inv_width = 1.0 / (math.sqrt(2.0) * spacing * config.value_pe_width_scale)
        self.calibrate = False
        self.reset_parameters(config.num_layers)

    def reset_parameters(self, num_layers: int) -> None:
        """Xavier init with T-Fixup scaling of the value and output projections."""
        for weight in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight, self.out_proj.weight):
            nn.init.xavier_uniform_(weight)
        with torch.no_grad():
            fixup = 0.67 * (num_layers**-0.25)
            self.v_proj_weight.mul_(fixup)
            self.out_proj.weight.mul_(fixup)
        nn.init.zeros_(self.in_proj_bias)
        nn.init.zeros_(self.out_proj.bias)
        nn.init.normal_(self.lattice_pos_weights, 0.0, 1.0 / math.sqrt(self.head_dim))
        nn.init.normal_(self.pe_dist_proj, 0.0, 1.0 / math.sqrt(self.pe_dist_proj.shape[-1]))

    def decay(self, q: Tensor) -> Tensor:
        """``[N, H]`` decay coefficients ``a = -f(α) / (2 r0²)`` from the queries ``[N, H, D]``."""
        alpha = (q * self.lattice_pos_weights.view(self.heads, self.head_dim)).sum(-1)
        if self.normalize:
            if self.calibrate:
                with torch.no_grad():
                    std = alpha.std().clamp_min(1e-6)
                    self.gauss_scale.copy_(torch.stack([1.0 / std, -alpha.mean()]))
            alpha = (alpha + self.gauss_scale[1]) * self.gauss_scale[0]
        b = self.lower
        f = (1.0 - b) * F.elu(alpha * (self.beta / (1.0 - b))) + 1.0
        return -f / (2.0 * self.r0**2)

    def forward(self, x: Tensor, pairs: PairIndex, pos: Tensor, trans: Tensor, chunk: int) -> Tensor:
        """Attention update ``[N, model_dim]`` of atom features ``x [N, model_dim]``.

        Args:
            x: atom features.
            pairs: the pair index of the batch.
            pos: ``[N, 3]`` Cartesian positions, Å.
            trans: ``[B, M, 3]`` image translations, Å.
            chunk: pairs per chunk of the image sums.
        """
        n, h, d = x.shape[0], self.heads, self.head_dim
        bq, bk, bv = self.in_proj_bias.chunk(3)
        q = (x @ self.q_proj_weight.T + bq).view(n, h, d)
        k = (x @ self.k_proj_weight.T + bk).view(n, h, d)
        v = (x @ self.v_proj_weight.T + bv).view(n, h, d)
        a = self.decay(q)
        r = pos.index_select(0, pairs.j) - pos.index_select(0, pairs.i)  # [E, 3]
        a_e = a.index_select(0, pairs.i)  # [E, H]
        small = len(r) <= chunk  # one chunk: plain autograd (keeps intermediates, saves the recomputation)
        phi = _phi_kernel(r, a_e, trans, pairs.crys) if small else _PhiChunks.apply(r, a_e, trans, pairs.crys, chunk)
        n_crys, n_max = trans.shape[0], pairs.n_max

        def dense(t: Tensor) -> Tensor:  # [N, H, D] -> [B, n_max, H, D]
            return t.new_zeros(n_crys * n_max, h, d).index_copy(0, pairs.slot, t).view(n_crys, n_max, h, d)

        qd, kd, vd = dense(q / math.sqrt(d)), dense(k), dense(v)
        scores = torch.einsum("bihd,bjhd->bijh", qd, kd).reshape(-1, h)
        fill = torch.finfo(x.dtype).min / 2
        logits = torch.full_like(scores, fill).index_copy(0, pairs.flat, scores.index_select(0, pairs.flat) + phi)
        attn = torch.softmax(logits.view(n_crys, n_max, n_max, h), dim=2)
        out = torch.einsum("bijh,bjhd->bihd", attn, vd).reshape(-1, h, d).index_select(0, pairs.slot)
        attn_e = attn.reshape(-1, h).index_select(0, pairs.flat)
        proj, mu = self.pe_dist_proj[0], self.mu.to(pos.dtype)
        if small:
            out = out.index_add(0, pairs.i, _value_kernel(r, a_e, attn_e, proj, trans, pairs.crys, mu, self.inv_width))
        else:
            out = out + _ValueChunks.apply(r, a_e, attn_e, proj, trans, pairs.crys, pairs.i, n, mu, self.inv_width, chunk)
        return self.out_proj(out.reshape(n, h * d))


class EncoderLayer(nn.Module):
    """Post-residual block without normalisation (T-Fixup): attention, then a ReLU feed-forward."""

    def __init__(self, config: CrystalformerConfig, layer: int) -> None:
        super().__init__()
        self.self_attn = LatticeAttention(config, layer)
        self.linear1 = nn.Linear(config.model_dim, config.ff_dim)
        self.linear2 = nn.Linear(config.ff_dim, config.model_dim)
        fixup = 0.67 * (config.num_layers**-0.25)
        with torch.no_grad():
            for linear in (self.linear1, self.linear2):
                nn.init.xavier_uniform_(linear.weight)
                linear.weight.mul_(fixup)
                nn.init.zeros_(linear.bias)

    def forward(self, x: Tensor, pairs: PairIndex, pos: Tensor, trans: Tensor, chunk: int) -> Tensor:
        """Updated features ``[N, model_dim]``."""
        x = x + self.self_attn(x, pairs, pos, trans, chunk)
        return x + self.linear2(F.relu(self.linear1(x)))


class Encoder(nn.Module):
    """Stack of encoder layers (``encoder.layers.{l}``)."""

    def __init__(self, config: CrystalformerConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList([EncoderLayer(config, layer) for layer in range(config.num_layers)])


def image_grid(lattice_range: int) -> Tensor:
    """``[(2R+1)³, 3]`` integer image offsets, first index slowest."""
    r = torch.arange(-lattice_range, lattice_range + 1)
    return torch.cartesian_prod(r, r, r).to(torch.float32)


class CrystalformerNet(nn.Module):
    """Embedding → encoder → mean pooling → MLP; returns the raw (normalised) output ``[B, n_targets]``."""

    def __init__(self, config: CrystalformerConfig) -> None:
        super().__init__()
        self.config = config
        self.input_embeddings = nn.Linear(N_ELEMENTS, config.model_dim, bias=False)
        nn.init.normal_(self.input_embeddings.weight, 0.0, config.model_dim**-0.5)
        with torch.no_grad():
            self.input_embeddings.weight.mul_((9 * config.num_layers) ** -0.25)
        self.encoder = Encoder(config)
        layers: list[nn.Module] = []
        width = config.model_dim
        for hidden in config.embedding_dim:
            layers += [nn.Linear(width, hidden), nn.Identity(), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, config.n_targets))
        self.mlp = nn.Sequential(*layers)
        self.register_buffer("images", image_grid(config.lattice_range), persistent=False)

    def forward(
        self, x: Tensor, pos: Tensor, lattice: Tensor, crystal_idx: Tensor, n_atoms: Tensor, chunk: int = 2048
    ) -> Tensor:
        """Raw output.

        Args:
            x: ``[N, 98]`` element probabilities (one-hot at Z-1 for real atoms).
            pos: ``[N, 3]`` Cartesian positions, Å.
            lattice: ``[B, 3, 3]`` lattice vectors as rows, Å.
            crystal_idx: ``[N]`` crystal of each atom (contiguous).
            n_atoms: ``[B]`` atoms per crystal.
            chunk: atom pairs per chunk of the periodic image sums (memory ∝ chunk · images · 64).
        """
        pairs = PairIndex.build(crystal_idx, n_atoms)
        trans = torch.einsum("mk,bkc->bmc", self.images.to(lattice.dtype), lattice)
        h = self.input_embeddings(x)
        for layer in self.encoder.layers:
            h = layer(h, pairs, pos, trans, chunk)
        pooled = h.new_zeros(len(n_atoms), h.shape[1]).index_add(0, crystal_idx, h)
        pooled = pooled / n_atoms[:, None].to(h.dtype)
        return self.mlp(pooled)

    def is_calibrated(self) -> bool:
        """Whether every layer holds decay-logit statistics (``gauss_scale[0] != 0``)."""
        if not self.config.normalize_gauss:
            return True
        return all(bool(layer.self_attn.gauss_scale[0] != 0) for layer in self.encoder.layers)

    def set_calibration(self, on: bool) -> None:
        """While on, each forward stores the batch statistics of the decay logits in ``gauss_scale``."""
        for layer in self.encoder.layers:
            layer.self_attn.calibrate = on
