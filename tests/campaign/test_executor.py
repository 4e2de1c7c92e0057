"""Scheduling: the memory-aware limit of runs in flight, the backend choice and the no-Ray fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

import smoacs.campaign.executor as executor
from smoacs.campaign.spec import campaign_from_dict, expand
from smoacs.errors import ConfigError


def _cells(tmp_path: Path, n: int = 4, **base: object):  # noqa: ANN202 - list[Cell]
    spec = campaign_from_dict({"base": {"preset": "perovskite-bandgap", "physics": "none", **base},
                               "grid": {"seed": list(range(n))}, "out": str(tmp_path)})  # fmt: skip
    return expand(spec)


def test_memory_estimate_grows_with_atoms_and_candidates(tmp_path: Path) -> None:
    small = executor.estimate_memory_gb(_cells(tmp_path, 1, candidates=32)[0].config)
    many = executor.estimate_memory_gb(_cells(tmp_path, 1, candidates=256)[0].config)
    supercell = executor.estimate_memory_gb(_cells(tmp_path, 1, preset="perovskite3x3x3-bandgap")[0].config)
    physics = executor.estimate_memory_gb(_cells(tmp_path, 1, candidates=32, physics="chgnet")[0].config)
    assert small < many < supercell and physics == pytest.approx(small + executor.POTENTIAL_MEMORY_GB)


def test_limit_is_the_smallest_of_cpus_memory_workers_and_cells(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executor, "available_cores", lambda: 8)
    monkeypatch.setattr(executor, "available_memory_gb", lambda: 10.0)
    cells = _cells(tmp_path, 6)
    assert executor.plan(cells, threads=1, workers=0, memory_gb=1.0, backend="local").limit == 6  # cells
    assert executor.plan(cells, threads=2, workers=0, memory_gb=1.0, backend="local").limit == 4  # 8 CPUs ÷ 2
    assert executor.plan(cells, threads=1, workers=0, memory_gb=4.0, backend="local").limit == 2  # 10 GB ÷ 4 GB
    assert executor.plan(cells, threads=1, workers=3, memory_gb=1.0, backend="local").limit == 3  # --workers
    assert executor.plan(cells, threads=1, workers=0, memory_gb=50.0, backend="local").limit == 1  # at least one
    estimated = executor.plan(cells, threads=1, workers=0, memory_gb=0.0, backend="local")
    assert estimated.memory_gb == pytest.approx(executor.estimate_memory_gb(cells[0].config))


def test_without_ray_auto_falls_back_to_local_and_ray_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executor, "ray_available", lambda: False)
    cells = _cells(tmp_path, 2)
    assert executor.plan(cells, 1, 0, 1.0, "auto").backend == "local"
    with pytest.raises(ConfigError, match=r"needs ray: pip install 'smoacs\[campaign\]'"):
        executor.plan(cells, 1, 0, 1.0, "ray")
    with pytest.raises(ConfigError, match="--address needs the ray backend"):
        executor.plan(cells, 1, 0, 1.0, "auto", address="ray://nowhere:10001")
    with pytest.raises(ConfigError, match="unknown backend"):
        executor.plan(cells, 1, 0, 1.0, "dask")  # type: ignore[arg-type]


def test_ray_is_imported_only_by_the_executor() -> None:
    src = Path(executor.__file__).resolve().parents[1]
    importers = sorted(str(p.relative_to(src)) for p in src.rglob("*.py")
                       if "import ray" in p.read_text() or "from ray" in p.read_text())  # fmt: skip
    assert importers == ["campaign/executor.py"]
