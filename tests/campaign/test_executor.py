"""Scheduling: the memory-aware limit of runs in flight, the backend choice and the no-Ray fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

import smoacs.campaign.executor as executor
from smoacs.campaign.spec import campaign_from_dict, expand
from smoacs.errors import ConfigError
from smoacs.resources import estimate_memory_gb


def _cells(tmp_path: Path, n: int = 4, **base: object):  # noqa: ANN202 - list[Cell]
    spec = campaign_from_dict({"base": {"preset": "perovskite-bandgap", "physics": "none", **base},
                               "grid": {"seed": list(range(n))}, "out": str(tmp_path)})  # fmt: skip
    return expand(spec)


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
    assert estimated.memory_gb == pytest.approx(estimate_memory_gb(cells[0].config))


def test_cluster_memory_is_counted_once_per_host_and_cpus_per_raylet() -> None:
    gib = 2**30
    nodes = [{"Alive": True, "NodeManagerAddress": "10.0.0.1", "Resources": {"CPU": 2.0, "memory": 16.0 * gib}},
             {"Alive": True, "NodeManagerAddress": "10.0.0.1", "Resources": {"CPU": 2.0, "memory": 15.0 * gib}},
             {"Alive": True, "NodeManagerAddress": "10.0.0.2", "Resources": {"CPU": 8.0, "memory": 30.0 * gib}},
             {"Alive": False, "NodeManagerAddress": "10.0.0.3", "Resources": {"CPU": 64.0, "memory": 500.0 * gib}}]
    cpus, memory = executor.cluster_capacity(nodes)
    assert cpus == 12  # dead nodes do not count
    assert memory == pytest.approx(16.0 + 30.0)  # two raylets on 10.0.0.1 share its memory: 16 GB, not 31 GB
    assert executor.cluster_capacity([]) == (1, executor.UNREPORTED_MEMORY_GB)


def test_a_cluster_plan_uses_the_per_host_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gib = 2**30
    two_raylets_one_host = [{"Alive": True, "NodeManagerAddress": "127.0.0.1",
                             "Resources": {"CPU": 4.0, "memory": 16.0 * gib}} for _ in range(2)]  # fmt: skip
    monkeypatch.setattr(executor, "ray_available", lambda: True)
    monkeypatch.setattr(executor, "_connect", lambda address, cpus: True)
    import ray

    monkeypatch.setattr(ray, "nodes", lambda: two_raylets_one_host)
    schedule = executor.plan(_cells(tmp_path, 8), threads=1, workers=0, memory_gb=4.0, backend="ray",
                             address="127.0.0.1:6379")  # fmt: skip
    assert (schedule.cpus, schedule.available_gb, schedule.limit) == (8, pytest.approx(16.0), 4)  # 16 GB ÷ 4 GB


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


def test_connecting_to_a_cluster_passes_what_its_client_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    seen: list[dict] = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: seen.append(kwargs))
    assert executor._connect("ray://head:10001", None) and executor._connect("10.0.0.5:6379", None)
    assert "logging_level" not in seen[0] and seen[0]["address"] == "ray://head:10001"  # a Ray Client refuses it
    assert "logging_level" in seen[1] and "num_cpus" not in seen[1]


def test_a_refused_cluster_connection_is_one_line_with_the_token_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    def refuse(**kwargs: object) -> None:
        raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.5:6379\nmore")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    with pytest.raises(ConfigError, match=r"at 10.0.0.5:6379: Failed to connect .*set RAY_AUTH_MODE=token") as caught:
        executor._connect("10.0.0.5:6379", None)
    assert "\n" not in str(caught.value)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    with pytest.raises(ConfigError) as caught:
        executor._connect("10.0.0.5:6379", None)
    assert "RAY_AUTH_MODE" not in str(caught.value)  # already set: no hint
