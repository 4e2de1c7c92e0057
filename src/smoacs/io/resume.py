"""Resuming an interrupted run: what of a run directory can be kept.

A mini-batch counts as finished when its rows are in result.csv *and* its candidates in result.npz, in run order:
the kept part is the longest prefix of mini-batches whose ids (``c00000``…) are the first rows of both files.
Anything after that prefix (a batch interrupted between its result.csv and result.npz writes, or the batches after
a failed one) is dropped and recomputed, so the resumed run writes exactly what an uninterrupted run would.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from collections.abc import Callable
from typing import Any

from smoacs.errors import ConfigError
from smoacs.io.rundir import RUN_JSON, FinishedBatches, RunDirectory

ResumeState = FinishedBatches  #: the finished part of a run directory (see :class:`FinishedBatches`)


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


def check_config(
    out_dir: Path, config_dict: dict[str, Any], upgrade: Callable[[dict[str, Any]], dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The run directory's run.json; ConfigError unless its config equals ``config_dict`` (``out`` aside).

    ``upgrade`` (optional) rewrites the stored config into the current form (settings added since it was written
    take their defaults), so a run.json from an older version resumes when nothing it recorded has changed.
    """
    if not out_dir.is_dir():
        raise ConfigError(f"cannot resume: run directory {out_dir} does not exist")
    try:
        meta = json.loads((out_dir / RUN_JSON).read_text())
        old = meta["config"]
    except FileNotFoundError:
        raise ConfigError(f"cannot resume: {out_dir} has no run.json (not a smoacs run directory)") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot resume: {out_dir}/run.json is unreadable: {exc}") from None
    if "oracles" in old and "oracles" not in config_dict:  # columns <prop>_oracle, today <prop>_judge
        raise ConfigError(
            f"cannot resume {out_dir}: it was written before oracles were renamed judges (its result.csv has "
            "<property>_oracle columns); start a new run, or re-check it with smoacs evaluate"
        )
    # ``out`` may differ; ``target`` (older run.json files) is derived from the objectives, which are compared
    old, new = _as_written(_comparable(old)), _comparable(config_dict)
    if upgrade is not None:  # settings added since the run was written take their defaults
        try:
            old = _comparable(upgrade({**old, "out": str(out_dir)}))
        except ConfigError:
            pass  # an unreadable stored config: compare as written, so the differing key is named
    key = _first_difference(old, new)
    if key is not None:
        was, now = _lookup(old, key), _lookup(new, key)
        raise ConfigError(f"cannot resume {out_dir}: config key {key} differs (run.json: {was!r}, requested: {now!r})")
    return meta


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """A config as plain JSON data without the keys a resume may change (``out``) or derives (``target``)."""
    data = json.loads(json.dumps(config, default=str))
    return {k: v for k, v in data.items() if k not in ("out", "target")}


def _as_written(config: dict[str, Any]) -> dict[str, Any]:
    """Fill settings whose *default changed what a run does* with the value the writing version used.

    A physics run written before the composition polish existed (no ``physics.polish_rounds``) ran 0 rounds; reading
    the new default (2) instead would polish its remaining batches but not its finished ones. With the old value
    filled in, resuming it under today's default is refused naming ``physics.polish_rounds`` (resume it with
    ``--polish-rounds 0``). Likewise a physics run written before ``physics.polish_replace`` existed polished without
    replacing escaped candidates (resume it with ``--no-polish-replace``). Without physics the polish never runs, so
    such a run takes the defaults as any other.
    """
    physics = config.get("physics")
    if not isinstance(physics, dict) or physics.get("potential") in (None, "none"):
        return config
    written = {"polish_rounds": 0, "polish_replace": False}
    missing = {key: value for key, value in written.items() if key not in physics}
    return {**config, "physics": {**physics, **missing}} if missing else config


def _lookup(data: Any, path: str) -> Any:  # noqa: ANN401
    node = data
    for part in re.findall(r"[^.\[\]]+", path):
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            return "<missing>"
    return node


def load_finished(out_dir: Path, batch_ids: list[list[str]], meta: dict[str, Any]) -> FinishedBatches:
    """The finished mini-batches of ``out_dir`` (``batch_ids``: the ids of every mini-batch of the run, in order)."""
    return RunDirectory(out_dir).read_finished(batch_ids, meta)
