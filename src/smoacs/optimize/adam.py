"""Adam with per-crystal step counts, so single crystals can be reset (copy-and-mutate) or frozen (quarantine).

``torch.optim.Adam`` keeps one step count per tensor; resetting the moments of a few rows would then apply a large
bias-corrected first step. Here every row has an owner crystal, and the bias correction uses that crystal's own
step count. Frozen crystals get no update and their moments are left untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class ParamGroup:
    """A parameter tensor whose rows belong to crystals.

    Attributes:
        name: parameter name (for reports).
        param: the leaf tensor being optimised.
        owner: ``[n_rows]`` crystal index of each row.
        lr: base learning rate.
    """

    name: str
    param: Tensor
    owner: Tensor
    lr: float


class RowwiseAdam:
    """Adam (β₁ = 0.9, β₂ = 0.999, ε = 1e-8, no weight decay) with per-crystal bias correction."""

    def __init__(self, groups: Sequence[ParamGroup], n_crystals: int, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.groups = list(groups)
        self.beta1, self.beta2 = betas
        self.eps = eps
        device = self.groups[0].param.device
        self.steps = torch.zeros(n_crystals, dtype=torch.float32, device=device)
        self.exp_avg = [torch.zeros_like(g.param) for g in self.groups]
        self.exp_avg_sq = [torch.zeros_like(g.param) for g in self.groups]

    def zero_grad(self) -> None:
        """Clear gradients."""
        for group in self.groups:
            group.param.grad = None

    @torch.no_grad()
    def step(self, lr_scale: float, active: Tensor) -> None:
        """One update of every active crystal; ``lr_scale`` multiplies each group's base rate (schedules)."""
        self.steps += active.to(self.steps.dtype)
        for group, m, v in zip(self.groups, self.exp_avg, self.exp_avg_sq, strict=True):
            grad = group.param.grad
            if grad is None:
                continue
            row_shape = (-1,) + (1,) * (grad.dim() - 1)
            row_active = active[group.owner].view(row_shape)
            grad = torch.where(row_active, grad, torch.zeros_like(grad))
            m.copy_(torch.where(row_active, self.beta1 * m + (1 - self.beta1) * grad, m))
            v.copy_(torch.where(row_active, self.beta2 * v + (1 - self.beta2) * grad * grad, v))
            # Bias corrections in float64 (1 − 0.999 loses ~1e-5 relative in float32), one value per row.
            t = self.steps[group.owner].clamp_min(1.0).double().view(row_shape)
            m_hat = m / (1 - self.beta1**t).to(m.dtype)
            v_hat = v / (1 - self.beta2**t).to(v.dtype)
            update = group.lr * lr_scale * m_hat / (v_hat.sqrt() + self.eps)
            group.param.sub_(torch.where(row_active, update, torch.zeros_like(update)))

    @torch.no_grad()
    def reset(self, crystals: Tensor) -> None:
        """Forget the moments and step counts of ``crystals`` (indices)."""
        self.steps[crystals] = 0
        is_reset = torch.zeros_like(self.steps, dtype=torch.bool)
        is_reset[crystals] = True
        for group, m, v in zip(self.groups, self.exp_avg, self.exp_avg_sq, strict=True):
            rows = is_reset[group.owner]
            m[rows] = 0
            v[rows] = 0
