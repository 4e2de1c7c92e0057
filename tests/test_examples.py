"""The examples run: demo.py (subprocess), demo.ipynb (code cells exec'd in order), custom_objective.yaml (CLI)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smoacs.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SRC = Path(__file__).resolve().parents[1] / "src"


def test_demo_script(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py"), "--candidates", "4", "--steps", "5", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "candidates succeeded" in proc.stdout
    with (out / "result.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    for row in rows:
        if row["success"] == "True":
            assert row["formula"] in proc.stdout and str(out / row["cif"]) in proc.stdout
    meta = json.loads((out / "run.json").read_text())
    assert meta["config"]["objectives"][0]["target"] == 2.5
    assert meta["config"]["optimizer"]["steps"] == 5


def test_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    notebook = json.loads((EXAMPLES / "demo.ipynb").read_text(encoding="utf-8"))
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert all(not cell["outputs"] and cell["execution_count"] is None for cell in code), "clear the outputs"
    monkeypatch.setenv("SMOACS_EXAMPLE_CANDIDATES", "3")
    monkeypatch.setenv("SMOACS_EXAMPLE_STEPS", "4")
    monkeypatch.setenv("SMOACS_EXAMPLE_OUT", str(tmp_path))
    monkeypatch.setenv("SMOACS_EXAMPLE_NO_PLOT", "1")
    namespace: dict = {"__name__": "__main__"}
    for i, cell in enumerate(code):
        exec(compile("".join(cell["source"]), f"demo.ipynb[{i}]", "exec"), namespace)  # noqa: S102
    assert namespace["CANDIDATES"] == 3 and namespace["STEPS"] == 4
    assert namespace["result"].summary["n_candidates"] == 3
    custom = namespace["custom_result"]
    assert custom.summary["n_candidates"] == 3 and "bulk_modulus_rate" in custom.summary
    assert all("bulk_modulus" in row for row in custom.rows)
    assert "succeeded" in capsys.readouterr().out
    assert (tmp_path / "gap-bulk" / "result.csv").is_file()


def test_custom_objective_yaml_runs(tmp_path: Path) -> None:
    # tests/test_config_files.py loads this file; here it runs, tiny.
    out = tmp_path / "custom"
    args = ["run", str(EXAMPLES / "custom_objective.yaml"), "--candidates", "2", "--steps", "3", "--device", "cpu",
            "--no-judge", "--no-progress", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    with (out / "result.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and "bulk_modulus_ok" in rows[0]
