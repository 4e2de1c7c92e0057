"""Row gathers whose backward is a sparse product instead of ``index_add_``.

On CPU, ``torch.index_add_`` (the backward of ``index_select``) sums ``[E, C]`` rows into ``[N, C]`` at a cost
dominated by per-row overhead: ~50 ms for the 15,360 × 128 edge gradients of 256 perovskite cells, a quarter of an
optimisation step (issue 15). The same sum as a product with the sparse ``[N, E]`` incidence matrix (CSR, one 1
per edge in row ``index[e]``, columns in edge order) adds the rows of each target in the same order (bitwise-equal
results in the tests). Measured (benchmarks/README.md, issue 15): with 2 threads on 2 cores shared with other
processes, ``index_add_`` (a parallel sort-based ``scatter_add_``) degrades 30–50× and the product is ~3× faster per
step; with one thread ``index_add_`` is faster (1.9 vs 2.6 ms for that sum). :data:`MODE` ``"auto"`` uses
the product only when torch runs more than one thread (the default, ``"index_add"``, keeps ``index_add_``: idle,
the product cost a physics run 14 %); ``"sparse"`` and ``"index_add"`` force one path (A/B runs).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

#: "index_add" (the default: measured faster on an idle machine, where a physics run with "auto" took 1.14x as
#: long), "auto" (sparse product when ``torch.get_num_threads() > 1``: faster when other processes share the
#: cores) or "sparse".
MODE = "index_add"


def use_sparse() -> bool:
    """Whether :func:`scatter_rows` sums through the sparse product under the current :data:`MODE` and threads."""
    return MODE == "sparse" or (MODE == "auto" and torch.get_num_threads() > 1)


def scatter_matrix(index: Tensor, n_rows: int, dtype: torch.dtype) -> Tensor:
    """Sparse CSR ``[n_rows, len(index)]`` matrix ``S`` with ``S[index[e], e] = 1``: ``S @ x`` sums rows of ``x`` by target."""
    order = torch.argsort(index, stable=True)
    counts = torch.bincount(index, minlength=n_rows)
    crow = torch.zeros(n_rows + 1, dtype=torch.int64, device=index.device)
    torch.cumsum(counts, 0, out=crow[1:])
    values = torch.ones(len(index), dtype=dtype, device=index.device)
    with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state": the product used here is stable
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(crow, order, values, (n_rows, len(index)), check_invariants=False)


def scatter_rows(source: Tensor, index: Tensor, n_rows: int, matrix: Tensor | None = None) -> Tensor:
    """``zeros(n_rows, C).index_add_(0, index, source)``, through :func:`scatter_matrix` (or the given ``matrix``) when
    :func:`use_sparse`."""
    if not use_sparse():
        return torch.zeros(n_rows, *source.shape[1:], dtype=source.dtype, device=source.device).index_add_(0, index, source)
    if matrix is None or matrix.dtype != source.dtype:
        matrix = scatter_matrix(index, n_rows, source.dtype)
    return matrix @ source


class _GatherRows(torch.autograd.Function):
    """``index_select(x, 0, index)`` with the backward of :func:`scatter_rows`."""

    @staticmethod
    def forward(ctx, x, index):  # noqa: ANN001, ANN205 - autograd.Function signature
        ctx.save_for_backward(index)
        ctx.n_rows = x.shape[0]
        return torch.index_select(x, 0, index)

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205 - autograd.Function signature
        (index,) = ctx.saved_tensors
        return scatter_rows(grad.contiguous(), index, ctx.n_rows), None


def gather_rows(x: Tensor, index: Tensor) -> Tensor:
    """``x[index]`` along dimension 0 (``[len(index), ...]``), differentiable in ``x`` with a fast backward."""
    if not (torch.is_grad_enabled() and x.requires_grad) or x.dim() != 2:
        return torch.index_select(x, 0, index)
    return _GatherRows.apply(x, index)


class _SumRows(torch.autograd.Function):
    """:func:`scatter_rows` (sum of rows by target) with the backward ``index_select``."""

    @staticmethod
    def forward(ctx, source, index, n_rows):  # noqa: ANN001, ANN205 - autograd.Function signature
        ctx.save_for_backward(index)
        return scatter_rows(source.contiguous(), index, n_rows)

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205 - autograd.Function signature
        (index,) = ctx.saved_tensors
        return torch.index_select(grad, 0, index), None, None


def sum_rows(source: Tensor, index: Tensor, n_rows: int) -> Tensor:
    """``[n_rows, C]`` sums of the rows of ``source`` ``[E, C]`` by target ``index``, differentiable in ``source``."""
    if torch.is_grad_enabled() and source.requires_grad:
        return _SumRows.apply(source, index, n_rows)
    return scatter_rows(source.contiguous(), index, n_rows)
