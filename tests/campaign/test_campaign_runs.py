"""Campaign runs: identical bytes alone / in a campaign / resumed, --resume skips finished runs, a failing run is
recorded without stopping the others; the Ray backend gives the same files."""

from __future__ import annotations

import contextlib
import csv
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

import smoacs.runner
from smoacs.campaign.orchestrate import run_campaign
from smoacs.campaign.spec import campaign_from_dict
from smoacs.cli import main
from smoacs.errors import ConfigError
from smoacs.io.rundir import RunDirectory

#: Two mini-batches, so that a run can be interrupted between them.
BASE = {"preset": "perovskite-bandgap", "candidates": 4, "batch_size": 2, "steps": 4, "physics": "none", "device": "cpu"}
FLAGS = ["--preset", "perovskite-bandgap", "--candidates", "4", "--batch-size", "2", "--steps", "4",
         "--physics", "none", "--device", "cpu", "--threads", "1", "--no-progress"]  # fmt: skip
COMPARED = ("result.csv", "result.npz", "result_summary.csv")


def _spec(out: Path, grid: dict | None = None, **extra: object):  # noqa: ANN202 - CampaignSpec
    return campaign_from_dict({"base": BASE, "grid": grid or {"target": [2.0], "seed": [0, 1]}, "out": str(out), **extra})


def _same_files(a: Path, b: Path) -> None:
    for name in COMPARED:
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs between {a} and {b}"
    for folder in ("structures", "poscar"):
        files = sorted(p.name for p in (a / folder).iterdir())
        assert files == sorted(p.name for p in (b / folder).iterdir()) and files
        assert all((a / folder / f).read_bytes() == (b / folder / f).read_bytes() for f in files)


def _rows(directory: Path) -> dict[str, dict[str, str]]:
    with open(directory / "campaign.csv", newline="") as handle:
        return {row["name"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """seed 1 run by `smoacs run` with the same options."""
    out = tmp_path_factory.mktemp("alone") / "run"
    assert main(["run", *FLAGS, "--target", "2.0", "--seed", "1", "--out", str(out)]) == 0
    return out


def test_campaign_run_is_byte_identical_to_smoacs_run(tmp_path: Path, alone: Path) -> None:
    before = time.time()
    result = run_campaign(_spec(tmp_path / "c"), backend="local", workers=1, echo=lambda line: None)
    assert [o.status for o in result.outcomes] == ["finished", "finished"]
    first, second = result.outcomes
    assert before <= first.started <= first.started + first.wall_s <= second.started <= time.time()  # in order
    assert all(0 < o.cpu_s <= o.process_cpu_s for o in result.outcomes)
    _same_files(alone, tmp_path / "c" / "target-2_seed-1")
    rows = _rows(tmp_path / "c")
    assert set(rows) == {"target-2_seed-0", "target-2_seed-1"}
    row = rows["target-2_seed-1"]
    summary = next(csv.DictReader(open(alone / "result_summary.csv", newline="")))
    assert row["target"] == "2.0" and row["seed"] == "1" and row["status"] == "finished" and row["attempts"] == "1"
    assert row["success_rate"] == summary["success_rate"] and float(row["wall_s"]) > 0 and float(row["cpu_s"]) > 0
    assert "| 2.0 | 2/2 |" in (tmp_path / "c" / "campaign.md").read_text()  # one group (seeds averaged)
    assert (tmp_path / "c" / "campaign_success.png").stat().st_size > 0


def test_interrupted_campaign_resumes_to_the_same_bytes(tmp_path: Path, alone: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original, calls = RunDirectory.write_npz, []

    def interrupt_second_batch(self, arrays):  # noqa: ANN001, ANN202
        calls.append(1)
        if len(calls) == 4:  # seed 0 finished (2 batches); seed 1 stops after its first batch's result.csv
            raise KeyboardInterrupt
        return original(self, arrays)

    monkeypatch.setattr(RunDirectory, "write_npz", interrupt_second_batch)
    with pytest.raises(KeyboardInterrupt):
        run_campaign(_spec(tmp_path / "c"), backend="local", workers=1, echo=lambda line: None)
    monkeypatch.setattr(RunDirectory, "write_npz", original)
    interrupted = tmp_path / "c" / "target-2_seed-1"
    assert json.loads((interrupted / "run.json").read_text())["status"] == "interrupted"
    with pytest.raises(ConfigError, match="already holds a campaign"):
        run_campaign(_spec(tmp_path / "c"), backend="local", workers=1, echo=lambda line: None)
    finished_json = (tmp_path / "c" / "target-2_seed-0" / "run.json").read_bytes()
    lines: list[str] = []
    result = run_campaign(_spec(tmp_path / "c"), resume=True, backend="local", workers=1, echo=lines.append)
    assert [o.status for o in result.outcomes] == ["skipped", "finished"]
    assert (tmp_path / "c" / "target-2_seed-0" / "run.json").read_bytes() == finished_json  # not redone
    assert json.loads((interrupted / "run.json").read_text())["resumed"]["finished_batches"] == 1
    _same_files(alone, interrupted)
    assert "1 already finished, 1 to run" in lines[0]


def test_resume_skips_finished_runs_without_running_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = run_campaign(_spec(tmp_path / "c"), backend="local", workers=1, echo=lambda line: None)
    before = {c.name: (Path(c.config.out) / "run.json").read_bytes() for c in first.cells}

    def no_runs(*args: object, **kwargs: object) -> None:
        raise AssertionError("a finished run was run again")

    monkeypatch.setattr(smoacs.runner, "run", no_runs)
    again = run_campaign(_spec(tmp_path / "c"), resume=True, backend="local", workers=1, echo=lambda line: None)
    assert [o.status for o in again.outcomes] == ["skipped", "skipped"] and again.schedule is None
    assert {c.name: (Path(c.config.out) / "run.json").read_bytes() for c in again.cells} == before
    assert [r["success_rate"] for r in _rows(tmp_path / "c").values()] == [
        str(o.summary["success_rate"]) for o in first.outcomes
    ]


def test_a_failing_run_is_recorded_and_the_others_finish(tmp_path: Path) -> None:
    good, bad = tmp_path / "SrTiO3.cif", tmp_path / "broken.cif"
    coords = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    Structure(Lattice.cubic(3.9), ["Sr", "Ti", "O", "O", "O"], coords).to(filename=str(good))
    bad.write_text("data_broken\nnot a crystal\n")
    lines: list[str] = []
    spec = _spec(tmp_path / "c", {"templates": [str(bad), str(good)]}, retries=1)
    result = run_campaign(spec, backend="local", workers=1, echo=lines.append)
    assert [o.status for o in result.outcomes] == ["failed", "finished"]
    failed = result.outcomes[0]
    assert failed.attempts == 2 and "cannot read template file" in failed.error  # retried once through resume
    rows = _rows(tmp_path / "c")
    assert rows["templates-broken"]["status"] == "failed" and "cannot read template" in rows["templates-broken"]["error"]
    assert rows["templates-SrTiO3"]["status"] == "finished" and rows["templates-SrTiO3"]["success_rate"] != ""
    assert any("templates-broken: FAILED after 2 attempt(s)" in line for line in lines)
    assert "## Failed runs" in (tmp_path / "c" / "campaign.md").read_text()
    assert main(["campaign", str(_write(tmp_path / "again.yaml", spec)), "--backend", "local", "--workers", "1",
                 "--out", str(tmp_path / "cli")]) == 1  # fmt: skip


def _write(path: Path, spec) -> Path:  # noqa: ANN001
    import yaml

    path.write_text(yaml.safe_dump({"base": spec.base, "grid": spec.grid, "retries": 0}))
    return path


@pytest.mark.slow
def test_a_ray_instance_the_campaign_starts_is_stopped_after_the_tables_are_written(tmp_path: Path, alone: Path) -> None:
    import ray  # a dev dependency: its absence is a failure, not a skip

    if ray.is_initialized():
        pytest.skip("a Ray instance of another test is running")
    result = run_campaign(_spec(tmp_path / "c"), backend="ray", workers=2, echo=lambda line: None)
    assert [o.status for o in result.outcomes] == ["finished", "finished"] and not ray.is_initialized()
    assert set(_rows(tmp_path / "c")) == {"target-2_seed-0", "target-2_seed-1"} and len(result.table) == 2
    assert len({o.host for o in result.outcomes}) == 2  # two worker processes
    _same_files(alone, tmp_path / "c" / "target-2_seed-1")


@pytest.fixture
def local_ray():  # noqa: ANN201
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_backend_writes_the_same_files(tmp_path: Path, alone: Path, local_ray) -> None:  # noqa: ANN001
    lines: list[str] = []
    result = run_campaign(_spec(tmp_path / "c"), backend="ray", echo=lines.append)
    assert [o.status for o in result.outcomes] == ["finished", "finished"]
    assert result.schedule is not None and result.schedule.backend == "ray" and result.schedule.limit == 2
    _same_files(alone, tmp_path / "c" / "target-2_seed-1")
    assert "local Ray: 2 run(s) at a time" in lines[0] and sum(line.startswith("[") for line in lines) == 2
    assert len({o.node for o in result.outcomes}) == 1 and result.outcomes[0].node  # one node, named
    assert _rows(tmp_path / "c")["target-2_seed-1"]["node"] == result.outcomes[0].node



def test_a_cell_runs_in_the_campaign_directory_it_is_given(tmp_path: Path, alone: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ray cluster's workers start in the cluster's directory: a relative run directory must still land where the
    campaign was started."""
    from smoacs.campaign.cell import run_cell
    from smoacs.campaign.spec import expand

    campaign, elsewhere = tmp_path / "campaign", tmp_path / "worker"
    campaign.mkdir(), elsewhere.mkdir()
    cell = next(c for c in expand(_spec(Path("c"))) if c.name == "target-2_seed-1")
    monkeypatch.chdir(elsewhere)
    outcome = run_cell(cell.name, cell.config, 0, workdir=str(campaign))
    assert outcome.status == "finished" and Path.cwd() == elsewhere and not (elsewhere / "c").exists()
    _same_files(alone, campaign / "c" / "target-2_seed-1")
    missing = run_cell(cell.name, cell.config, 0, workdir=str(tmp_path / "not-here"))
    assert missing.status == "failed" and "does not exist on" in missing.error and "all nodes share" in missing.error


@pytest.mark.slow
def test_a_campaign_on_an_existing_ray_cluster_started_elsewhere(tmp_path: Path, alone: Path) -> None:
    """`smoacs campaign --address` (both forms) against a cluster that `ray start` runs from another directory, each
    in its own process as a user runs them (Ray reads its authentication mode once per process)."""
    (tmp_path / "c.json").write_text(json.dumps({"base": BASE, "grid": {"target": [2.0], "seed": [0, 1]}}))
    with _ray_cluster(tmp_path, nodes=1, cpus=2) as (port, env):
        for address, out in ((f"127.0.0.1:{port}", "gcs"), (f"ray://127.0.0.1:{port + 1}", "client")):
            _campaign_process(tmp_path, address, out, env)
            assert {row["status"] for row in _rows(tmp_path / out).values()} == {"finished"}
            _same_files(alone, tmp_path / out / "target-2_seed-1")


@pytest.mark.slow
def test_a_campaign_spreads_over_the_nodes_of_a_two_node_cluster(tmp_path: Path, alone: Path) -> None:
    """Two Ray nodes of one CPU each (`ray start --head` and `ray start --address`, here on one machine, so their
    filesystem is shared): the runs go to both nodes and give the bytes `smoacs run` gives."""
    grid = {"target": [2.0], "seed": [0, 1, 2, 3]}
    (tmp_path / "c.json").write_text(json.dumps({"base": BASE, "grid": grid}))
    with _ray_cluster(tmp_path, nodes=2, cpus=1) as (port, env):
        _campaign_process(tmp_path, f"127.0.0.1:{port}", "two", env)
    rows = _rows(tmp_path / "two")
    assert {row["status"] for row in rows.values()} == {"finished"}
    assert len({row["node"] for row in rows.values()}) == 2, rows  # one CPU per node, two runs at a time
    _same_files(alone, tmp_path / "two" / "target-2_seed-1")


def _campaign_process(tmp_path: Path, address: str, out: str, env: dict[str, str]) -> None:
    """`smoacs campaign c.json --address ADDRESS --out OUT` in its own process, in ``tmp_path``."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "smoacs.cli", "campaign", "c.json", "--address", address, "--out", out],
                          cwd=tmp_path, env=env, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


@contextlib.contextmanager
def _ray_cluster(tmp_path: Path, nodes: int, cpus: int) -> Iterator[tuple[int, dict[str, str]]]:
    """A Ray cluster of ``nodes`` nodes with ``cpus`` CPUs each, started by ``ray start`` from another directory;
    yields the head's port (its Ray Client server listens on the next one) and the environment a client needs."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ray_cli = Path(sys.executable).with_name("ray")
    plain = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}  # `ray start`'s default: token auth on
    env = {**plain, "RAY_AUTH_MODE": "token"}  # what a client (and a joining node) must set with an explicit address
    common = ["--block", "--num-cpus", str(cpus), "--disable-usage-stats"]
    head = ["--head", "--port", str(port), "--include-dashboard", "false", "--ray-client-server-port", str(port + 1)]
    processes = []
    try:
        for index in range(nodes):
            args = head if index == 0 else ["--address", f"127.0.0.1:{port}"]
            processes.append(subprocess.Popen([str(ray_cli), "start", *args, *common], cwd=tmp_path.anchor,
                                              env=plain if index == 0 else env, start_new_session=True,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
            _wait_for_cluster(ray_cli, port, env, seconds=90, nodes=index + 1)
        yield port, env
    finally:
        for process in reversed(processes):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)


def _wait_for_cluster(ray_cli: Path, port: int, env: dict[str, str], seconds: float, nodes: int = 1) -> None:
    """Return once ``ray status`` reaches the head at ``port`` (its GCS listens before the head is ready) and lists
    ``nodes`` active nodes."""
    import re
    import subprocess

    deadline = time.monotonic() + seconds
    while True:
        status = subprocess.run([str(ray_cli), "status", "--address", f"127.0.0.1:{port}"], env=env, capture_output=True,
                                text=True)  # fmt: skip
        active = status.stdout.split("Pending:")[0]
        if status.returncode == 0 and len(re.findall(r"^ 1 node_", active, flags=re.MULTILINE)) >= nodes:
            return
        assert time.monotonic() < deadline, f"the Ray cluster on port {port} has not {nodes} node(s) after {seconds} s"
        time.sleep(1)
