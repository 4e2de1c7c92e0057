"""Sparse-product row sums and gathers (smoacs.crystal.scatter) against index_add_ / index_select."""

import pytest
import torch

from smoacs.crystal import scatter
from smoacs.crystal.scatter import gather_rows, scatter_matrix, scatter_rows, sum_rows


@pytest.fixture(autouse=True, params=["sparse", "index_add"])
def mode(request, monkeypatch):
    monkeypatch.setattr(scatter, "MODE", request.param)
    return request.param


def _case(dtype=torch.float32, n_rows=17, n_edges=200, width=5):
    generator = torch.Generator().manual_seed(3)
    index = torch.randint(0, n_rows - 2, (n_edges,), generator=generator)  # the last rows receive nothing
    source = torch.randn(n_edges, width, generator=generator, dtype=dtype)
    return index, source, n_rows


def test_scatter_rows_matches_index_add_exactly():
    index, source, n_rows = _case()
    expected = torch.zeros(n_rows, source.shape[1]).index_add_(0, index, source)
    assert torch.equal(scatter_rows(source, index, n_rows), expected)
    matrix = scatter_matrix(index, n_rows, source.dtype)
    assert matrix.shape == (n_rows, len(index))
    assert torch.equal(scatter_rows(source, index, n_rows, matrix), expected)


def test_gather_rows_forward_and_backward_match_index_select():
    index, source, n_rows = _case()
    x = torch.randn(n_rows, 3, requires_grad=True)
    weight = torch.randn(len(index), 3)
    (gather_rows(x, index) * weight).sum().backward()
    fast = x.grad.clone()
    x.grad = None
    (torch.index_select(x, 0, index) * weight).sum().backward()
    assert torch.equal(gather_rows(x.detach(), index), torch.index_select(x.detach(), 0, index))
    torch.testing.assert_close(fast, x.grad, rtol=1e-6, atol=1e-6)


def test_gradcheck_float64():
    index, source, n_rows = _case(torch.float64, n_rows=7, n_edges=30, width=3)
    x = torch.randn(n_rows, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: gather_rows(t, index), (x,))
    source.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: sum_rows(t, index, n_rows), (source,))


def test_sum_rows_without_gradients():
    index, source, n_rows = _case()
    with torch.no_grad():
        assert torch.equal(sum_rows(source, index, n_rows), torch.zeros(n_rows, 5).index_add_(0, index, source))
