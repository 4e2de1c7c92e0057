"""Campaign files: a base run, a grid of run options, an output directory; expanded into named cells.

A campaign file (YAML ``.yaml``/``.yml``, TOML ``.toml`` or JSON) holds::

    base: {preset: perovskite-bandgap, candidates: 16, steps: 30}   # or {config: my_task.yaml, ...}
    grid: {target: [0.5, 2.5], seed: [0, 1]}                         # any run option (see smoacs.options)
    out: campaigns/gap-scan                                          # or --out
    threads: 1          # torch threads of each run (default 1; each run is one task with this many CPUs)
    workers: 0          # runs at a time (0: as many as the CPUs and the memory allow)
    retries: 1          # a failed run is resumed this many more times
    memory_gb: 0        # memory one run needs (0: estimated from its cells and atoms)

The grid is the cartesian product of its value lists, in file order (the last key varies fastest). Each cell is
the base options with the cell's values applied, configured by :func:`smoacs.options.run_config` (as
``smoacs run`` with the same flags would be) and written to ``<out>/<name>``, the name made of the cell's
``key-value`` pairs (``target-0.5_seed-1``).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smoacs.config import RunConfig
from smoacs.configfile import read_config_data
from smoacs.errors import ConfigError, SmoacsError
from smoacs.options import OPTION_NAMES, RunOptions, options_from_mapping, run_config

#: Top-level keys of a campaign file.
CAMPAIGN_KEYS = ("base", "grid", "out", "threads", "workers", "retries", "memory_gb")
#: Options a campaign sets itself (each cell's directory), not the file.
RESERVED = ("out",)


@dataclass(frozen=True)
class CampaignSpec:
    """A campaign as read from its file (see the module docstring).

    Attributes:
        base: run options shared by every cell (plain data, as in the file).
        grid: option name → the values it takes (file order).
        out: the campaign directory.
        threads: torch CPU threads (and CPUs reserved) of each run.
        workers: runs at a time (0: decided from the CPUs and the memory).
        retries: extra attempts of a failed run, each through ``resume``.
        memory_gb: memory one run is given (0: :func:`estimate_memory_gb`).
        name: the campaign's name (the file's stem).
    """

    base: dict[str, Any]
    grid: dict[str, list[Any]] = field(default_factory=dict)
    out: str = ""
    threads: int = 1
    workers: int = 0
    retries: int = 1
    memory_gb: float = 0.0
    name: str = "campaign"


@dataclass(frozen=True)
class Cell:
    """One run of a campaign.

    Attributes:
        name: its directory name under the campaign directory.
        overrides: the grid values of this cell (option → value), in grid order.
        config: its validated run configuration (``out`` = the cell's directory).
    """

    name: str
    overrides: dict[str, Any]
    config: RunConfig


def load_campaign(path: str | Path, out: str | None = None) -> CampaignSpec:
    """Read and check a campaign file; ``out`` (``--out``) replaces the file's ``out``. One-line ConfigError,
    starting with the file's path, for anything wrong."""
    if not Path(path).is_file():
        raise ConfigError(f"campaign file {path} does not exist")
    data = read_config_data(path)
    try:
        return campaign_from_dict(data, name=Path(path).stem, out=out)
    except SmoacsError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def campaign_from_dict(data: Mapping[str, Any], name: str = "campaign", out: str | None = None) -> CampaignSpec:
    """A :class:`CampaignSpec` from plain data; ConfigError naming the offending key."""
    for key in data:
        if key not in CAMPAIGN_KEYS:
            raise ConfigError(f"{key}: unknown key at the top level of a campaign; allowed keys: {', '.join(CAMPAIGN_KEYS)}")
    base = data.get("base")
    if not isinstance(base, Mapping) or not base:
        raise ConfigError("base: missing or not a mapping; expected e.g. base: {preset: perovskite-bandgap, steps: 30}")
    grid = data.get("grid") or {}
    if not isinstance(grid, Mapping):
        raise ConfigError(f"grid: expected a mapping of run options to lists of values, got {type(grid).__name__}")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid.{key}: expected a non-empty list of values, got {values!r}")
        if str(key).replace("-", "_") in RESERVED:
            raise ConfigError(f"grid.{key}: the campaign sets each run's directory; set the campaign's out instead")
    for key in base:
        if str(key).replace("-", "_") in RESERVED:
            raise ConfigError(f"base.{key}: the campaign sets each run's directory; set the campaign's out instead")
    options_from_mapping(base, "base")  # unknown keys and wrong types, before any cell is built
    for key, values in grid.items():
        for value in values:
            options_from_mapping({key: value}, "grid")
    target = out or data.get("out") or f"campaigns/{name}"
    if not isinstance(target, str):
        raise ConfigError(f"out: expected a directory path, got {target!r}")
    numbers = {key: data.get(key, default) for key, default in (("threads", 1), ("workers", 0), ("retries", 1))}
    for key, value in numbers.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (key == "threads" and value < 1):
            raise ConfigError(f"{key}: expected an integer ≥ {1 if key == 'threads' else 0}, got {value!r}")
    memory = data.get("memory_gb", 0.0)
    if isinstance(memory, bool) or not isinstance(memory, int | float) or not 0 <= memory < math.inf:
        raise ConfigError(f"memory_gb: expected a number ≥ 0 (GB per run; 0: estimated), got {memory!r}")
    return CampaignSpec(dict(base), {str(k): list(v) for k, v in grid.items()}, target, memory_gb=float(memory),
                        name=name, **numbers)  # fmt: skip


def expand(spec: CampaignSpec) -> list[Cell]:
    """Every cell of the grid, configured and validated (the first bad cell raises a ConfigError naming it)."""
    keys = list(spec.grid)
    cells: list[Cell] = []
    seen: dict[str, dict[str, Any]] = {}
    for values in itertools.product(*(spec.grid[k] for k in keys)):
        overrides = dict(zip(keys, values, strict=True))
        name = cell_name(overrides)
        if name in seen:
            raise ConfigError(f"grid: cells {seen[name]} and {overrides} would share the directory {name!r}")
        seen[name] = overrides
        options = options_from_mapping({**spec.base, **overrides}, "base+grid")
        if options.threads is None:
            options = dataclasses.replace(options, threads=spec.threads)
        options = dataclasses.replace(options, out=str(Path(spec.out) / name))
        try:
            config = run_config(options)
        except SmoacsError as exc:
            raise ConfigError(f"cell {name}: {exc}") from None
        cells.append(Cell(name, overrides, config))
    return cells


def cell_name(overrides: Mapping[str, Any]) -> str:
    """The directory name of a cell: ``key-value`` pairs joined by ``_`` (``run`` for an empty grid).

    Floats print as ``%g``, lists/mappings join their items with ``-``, paths contribute their stem; anything
    outside ``[A-Za-z0-9.+-]`` becomes ``-``.
    """
    if not overrides:
        return "run"
    parts = [f"{str(key).replace('_', '-')}-{_value_text(key, value)}" for key, value in overrides.items()]
    return "_".join(parts)


def _value_text(key: str, value: Any) -> str:  # noqa: ANN401 - one grid value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"{value:g}"  # a sign is kept: target--1 and target-1 differ
    if isinstance(value, Mapping):
        text = "-".join(f"{k}-{v}" for k, v in value.items())
    elif isinstance(value, list | tuple):
        return "-".join(_value_text(key, v) for v in value)
    elif str(key).replace("-", "_") in ("config", "templates"):
        text = Path(str(value)).stem
    else:
        text = str(value)
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-") or "x"


def option_keys() -> tuple[str, ...]:
    """The option names a ``base`` or ``grid`` accepts (besides ``out``, which the campaign sets)."""
    return tuple(name for name in OPTION_NAMES if name not in RESERVED)


__all__ = ["CAMPAIGN_KEYS", "CampaignSpec", "Cell", "RunOptions", "campaign_from_dict", "cell_name", "expand",
           "load_campaign", "option_keys"]  # fmt: skip
