"""Data-set templates (perov-5, JARVIS supercon): shipped copies, order, limit, skipped entries."""

from __future__ import annotations

import numpy as np
import pytest

from smoacs.errors import TemplateError
from smoacs.templates.datasets import DATASET_FILES, dataset_templates
from smoacs.templates.packaged import read_library


@pytest.mark.parametrize(("name", "count"), [("perov5", 7572), ("supercon", 1056)])
def test_shipped_copies(name: str, count: int) -> None:
    records = read_library(DATASET_FILES[name])
    assert len(records) == count
    names = [r["name"] for r in records]
    assert names == sorted(names) and len(set(names)) == count
    assert all(r["name"].startswith(name + "-") for r in records)


def test_perov5_limit_and_order() -> None:
    result = dataset_templates("perov5", limit=20)
    names = [t.name for t in result.templates]
    assert len(names) == 20 and names == sorted(names)
    assert all(t.n_atoms == 5 and not t.is_perovskite for t in result.templates)
    # Skipped entries are those examined before the limit, all before the last template in name order.
    assert all(s.name < names[-1] and "neutral" in s.reason for s in result.skipped)
    assert names == [t.name for t in dataset_templates("perov5", limit=20).templates]


def test_supercon_max_atoms_and_patterns() -> None:
    result = dataset_templates("supercon", max_atoms=4, limit=30)
    assert result.templates and all(t.n_atoms <= 4 for t in result.templates)
    for template in result.templates:
        assert np.all(template.ox_combos.sum(axis=1) == 0)


def test_unknown_dataset() -> None:
    with pytest.raises(TemplateError, match="unknown template data set"):
        dataset_templates("mp-20")
