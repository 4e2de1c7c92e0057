"""Resuming an interrupted run: what of a run directory can be kept.

A mini-batch counts as finished when its rows are in result.csv *and* its candidates in result.npz, in run order:
the kept part is the longest prefix of mini-batches whose ids (``c00000``…) are the first rows of both files.
Anything after that prefix (a batch interrupted between its result.csv and result.npz writes, or the batches after
a failed one) is dropped and recomputed, so the resumed run writes exactly what an uninterrupted run would.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from smoacs.errors import ConfigError
from smoacs.io.writers import csv_text

_INT = re.compile(r"-?\d+")
_TEXT_COLUMNS = {"id", "template", "formula", "oxidation_states", "pattern_oxidation_states", "duplicate_of",
                 "reference_match", "copied_from", "quarantined", "cif", "poscar"}  # fmt: skip


@dataclass
class ResumeState:
    """The finished part of a run directory.

    Attributes:
        n_batches: finished mini-batches (the first ``n_batches`` of the run).
        columns: result.csv's header.
        rows: the finished rows, typed as the runner produces them (bool, int, float, str).
        structures: their structures, read back from the CIFs.
        arrays: result.npz's non-history arrays, trimmed to the finished candidates.
        histories: result.npz's ``history_*`` arrays (without the prefix), trimmed likewise.
        meta: the previous run.json.
    """

    n_batches: int
    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    structures: list[Any] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    histories: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def _parse(column: str, text: str) -> Any:  # noqa: ANN401
    if column in _TEXT_COLUMNS or text == "":
        return text
    if text in ("True", "False"):
        return text == "True"
    if _INT.fullmatch(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def _first_difference(old: Any, new: Any, path: str = "") -> str | None:  # noqa: ANN401
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old or key not in new:
                return sub
            found = _first_difference(old[key], new[key], sub)
            if found:
                return found
        return None
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return path
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            found = _first_difference(a, b, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if old == new else path


def check_config(out_dir: Path, config_dict: dict[str, Any]) -> dict[str, Any]:
    """The run directory's run.json; ConfigError unless its config equals ``config_dict`` (``out`` aside)."""
    if not out_dir.is_dir():
        raise ConfigError(f"cannot resume: run directory {out_dir} does not exist")
    try:
        meta = json.loads((out_dir / "run.json").read_text())
        old = meta["config"]
    except FileNotFoundError:
        raise ConfigError(f"cannot resume: {out_dir} has no run.json (not a smoacs run directory)") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot resume: {out_dir}/run.json is unreadable: {exc}") from None
    new = json.loads(json.dumps(config_dict, default=str))
    old, new = {k: v for k, v in old.items() if k != "out"}, {k: v for k, v in new.items() if k != "out"}
    key = _first_difference(old, new)
    if key is not None:
        was, now = _lookup(old, key), _lookup(new, key)
        raise ConfigError(f"cannot resume {out_dir}: config key {key} differs (run.json: {was!r}, requested: {now!r})")
    return meta


def _lookup(data: Any, path: str) -> Any:  # noqa: ANN401
    node = data
    for part in re.findall(r"[^.\[\]]+", path):
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            return "<missing>"
    return node


def load_finished(out_dir: Path, batch_ids: list[list[str]], meta: dict[str, Any]) -> ResumeState:
    """The finished mini-batches of ``out_dir`` (``batch_ids``: the ids of every mini-batch of the run, in order)."""
    from smoacs.evaluate.rerun import _read_cif

    csv_path, npz_path = out_dir / "result.csv", out_dir / "result.npz"
    if not csv_path.is_file() or not npz_path.is_file():
        return ResumeState(0, [], meta=meta)
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        columns = next(reader, [])
        raw = [line for line in reader if len(line) == len(columns)]
    with np.load(npz_path) as data:
        loaded = {key: data[key] for key in data.files}
    csv_ids = [line[columns.index("id")] for line in raw] if "id" in columns else []
    npz_ids = [str(i) for i in loaded.get("id", [])]
    done, n_rows = 0, 0
    for ids in batch_ids:
        end = n_rows + len(ids)
        if csv_ids[n_rows:end] != ids or npz_ids[n_rows:end] != ids:
            break
        done, n_rows = done + 1, end
    state = ResumeState(done, columns, meta=meta)
    if done == 0:
        return ResumeState(0, [], meta=meta)  # result.csv is rewritten from scratch
    n_cand = len(npz_ids)
    n_atoms = loaded["n_atoms"]
    total_atoms, kept_atoms = int(n_atoms.sum()), int(n_atoms[:n_rows].sum())
    for key, value in loaded.items():
        if key.startswith("history_"):
            state.histories[key[len("history_") :]] = value[:, :n_rows]
        elif value.shape[:1] == (n_cand,):
            state.arrays[key] = value[:n_rows]
        elif value.shape[:1] == (total_atoms,):
            state.arrays[key] = value[:kept_atoms]
        else:
            raise ConfigError(f"cannot resume: {npz_path} array {key} has an unexpected shape {value.shape}")
    kept_text = csv_text([dict(zip(columns, line, strict=True)) for line in raw[:n_rows]], columns, header=True)
    if csv_path.read_text(encoding="utf-8") != kept_text:
        csv_path.write_text(kept_text, encoding="utf-8")  # drop unfinished rows
    for line in raw[:n_rows]:
        row = {column: _parse(column, text) for column, text in zip(columns, line, strict=True)}
        state.rows.append(row)
        state.structures.append(_read_cif(out_dir / row["cif"], row["n_atoms"]))
    return state
