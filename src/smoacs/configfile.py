"""Config files: a YAML (``.yaml``/``.yml``), TOML (``.toml``) or JSON file that fully describes a run.

The format is :meth:`RunConfig.to_dict`'s: top-level run settings, ``predictors``/``judge`` maps (and the
``ensemble`` shorthand, read into ``predictors``), a list of
``objectives`` (``kind`` + ``property`` + the term's fields) and one section per stage (``templates``, ``space``,
``optimizer``, ``evaluation``). Every key is checked: unknown keys, wrong types, unknown predictors and unknown
objective kinds raise :class:`ConfigError` naming the key by its path (``objectives[1].kind``) and the allowed
values. See ``docs/CONFIG.md``.

* :func:`load_config` reads a file (checked and built by :func:`smoacs.config.config_from_dict`),
  :func:`dump_config` writes the YAML form; ``config_from_dict(config.to_dict()) == config``. This module knows
  file formats only; the checking of plain data lives in :mod:`smoacs.config`.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from smoacs.config import SECTIONS, RunConfig, config_from_dict, type_name
from smoacs.errors import ConfigError, SmoacsError

SUFFIXES = {".yaml": "YAML", ".yml": "YAML", ".toml": "TOML", ".json": "JSON"}


# ---- reading ---------------------------------------------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    """Safe YAML loader that reads ``1e-4`` as a float (YAML 1.1 wants ``1.0e-4``) and rejects duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise ConfigError(f"duplicate key {key!r} at line {mark.line + 1}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def read_config_data(path: str | Path) -> dict[str, Any]:
    """The plain data of a config file (format by suffix); one-line :class:`ConfigError` when it cannot be read.

    A ``run.json`` written by smoacs is accepted too: its ``config`` section is the run's resolved configuration.
    """
    path = Path(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(f"{path}: unknown config file type {path.suffix!r}; use .yaml, .yml, .toml or .json")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {_one_line(exc)}") from None
    try:
        if kind == "TOML":
            data = tomllib.loads(text)
        elif kind == "JSON":
            data = json.loads(text)
        else:
            data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {_one_line(exc)}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid {kind}: {_yaml_message(exc)}") from None
    if data is None:
        raise ConfigError(f"{path}: the file is empty; expected a mapping of run settings (see docs/CONFIG.md)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of run settings at the top level, got {type_name(data)}")
    if kind == "JSON" and isinstance(data.get("config"), dict) and "versions" in data:  # a run.json
        data = data["config"]
    return data


def load_config(path: str | Path) -> RunConfig:
    """Read, check and validate a config file. Errors are one line, starting with the file's path."""
    data = read_config_data(path)
    try:
        return config_from_dict(data, default_name=Path(path).stem)
    except SmoacsError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _yaml_message(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return _one_line(exc)


# ---- writing ---------------------------------------------------------------------------------------------------------
class _Dumper(yaml.SafeDumper):
    """Block mappings, flow (one-line) lists: ``length_bounds: [2.0, 10.0]``."""


_Dumper.add_representer(list, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True))
_Dumper.add_representer(
    dict, lambda dumper, data: dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=False)
)


def dump_config(config: RunConfig, header: str | None = None) -> str:
    """The YAML form of ``config`` (``load_config`` of it gives an equal RunConfig); ``header`` becomes comments."""
    data = config.to_dict()

    def block(keys: tuple[str, ...]) -> str:
        return yaml.dump({k: data[k] for k in keys}, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)

    lines = [f"# {line}".rstrip() for line in (header or "").splitlines()]
    lines.append("# smoacs run configuration; format: docs/CONFIG.md. Run it with: smoacs run FILE")
    # Objectives one line each ({kind: window, property: band_gap, ...}) read better than nested blocks.
    objectives = "objectives:\n" + "".join(
        "  - " + yaml.safe_dump(term, sort_keys=False, allow_unicode=True, default_flow_style=True, width=1000)
        for term in data["objectives"]
    )
    parts = [
        "\n".join(lines),
        block(("preset", "out", "candidates", "batch_size", "seed", "device", "threads")),
        block(("predictors", "judge")) + objectives,
        block(tuple(SECTIONS)),
    ]
    return "\n".join(part.rstrip("\n") + "\n" for part in parts)
