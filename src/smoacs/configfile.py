"""Config files: a YAML (``.yaml``/``.yml``), TOML (``.toml``) or JSON file that fully describes a run.

The format is :meth:`RunConfig.to_dict`'s: top-level run settings, ``predictors``/``oracles`` maps, a list of
``objectives`` (``kind`` + ``property`` + the term's fields) and one section per stage (``templates``, ``space``,
``optimizer``, ``evaluation``). Every key is checked: unknown keys, wrong types, unknown predictors and unknown
objective kinds raise :class:`ConfigError` naming the key by its path (``objectives[1].kind``) and the allowed
values. See ``docs/CONFIG.md``.

* :func:`load_config` reads a file, :func:`config_from_dict` checks and builds from plain data,
  :func:`dump_config` writes the YAML form; ``config_from_dict(config.to_dict()) == config``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tomllib
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from smoacs.config import RunConfig, TemplateSettings
from smoacs.design.space import SpaceSettings
from smoacs.errors import ConfigError, SmoacsError
from smoacs.evaluate.evaluator import EvaluationSettings
from smoacs.objectives.terms import OBJECTIVE_KINDS, Objective, Range
from smoacs.optimize.loop import OptimizerSettings
from smoacs.search.base import SearchSettings

#: Section name → settings class of the nested sections.
SECTIONS: dict[str, type] = {
    "templates": TemplateSettings,
    "space": SpaceSettings,
    "optimizer": OptimizerSettings,
    "evaluation": EvaluationSettings,
    "search": SearchSettings,
}
#: Quantities every run provides besides its predictors (objectives may constrain them).
DERIVED_PROPERTIES = ("tolerance", "min_distance")
SUFFIXES = {".yaml": "YAML", ".yml": "YAML", ".toml": "TOML", ".json": "JSON"}
_REQUIRED_TOP = ("predictors", "objectives")


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
        raise ConfigError(f"{path}: expected a mapping of run settings at the top level, got {_type_name(data)}")
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


# ---- checking --------------------------------------------------------------------------------------------------------
def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            tuple: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)  # fmt: skip


def _describe(hint: Any) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if hint is type(None):
        return "null"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s"
        return f"a list of {len(args)} {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        return "a mapping of names to strings"
    return {bool: "a boolean (true/false)", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


def _wrong(path: str, hint: Any, value: Any) -> ConfigError:
    shown = repr(value) if not isinstance(value, list | dict) else _type_name(value)
    return ConfigError(f"{path}: expected {_describe(hint)}, got {shown} ({_type_name(value)})")


def _coerce(value: Any, hint: Any, path: str) -> Any:
    """``value`` converted to the annotation ``hint`` (lists → tuples, ints → floats) or a ConfigError naming ``path``."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        for option in options:
            try:
                return _coerce(value, option, path)
            except ConfigError:
                continue
        raise _wrong(path, hint, value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _wrong(path, hint, value)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _wrong(path, hint, value)
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{path}: expected a finite number, got {value}")
            return float(value)
        raise _wrong(path, hint, value)
    if hint is str:
        if isinstance(value, str):
            return value
        raise _wrong(path, hint, value)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise _wrong(path, hint, value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(item, args[0], f"{path}[{i}]") for i, item in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{path}: expected {_describe(hint)}, got {len(value)} values")
        return tuple(_coerce(item, arg, f"{path}[{i}]") for i, (item, arg) in enumerate(zip(value, args, strict=True)))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _wrong(path, hint, value)
        key_hint, value_hint = args
        return {_coerce(k, key_hint, f"{path} key"): _coerce(v, value_hint, f"{path}.{k}") for k, v in value.items()}
    raise TypeError(f"unsupported annotation {hint!r} at {path}")  # a programming error, not a user error


def _mapping(value: Any, path: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: expected {what} (a mapping), got {_type_name(value)}")
    for key in value:
        if not isinstance(key, str):
            raise ConfigError(f"{path}: keys must be strings, got {key!r}")
    return value


def _check_keys(data: Mapping[str, Any], allowed: list[str], path: str, what: str, required: tuple[str, ...] = ()) -> None:
    prefix = f"{path}." if path else ""
    for key in data:
        if key not in allowed:
            raise ConfigError(f"{prefix}{key}: unknown key {what}; allowed keys: {', '.join(allowed)}")
    for key in required:
        if key not in data:
            raise ConfigError(f"{prefix}{key}: missing (required {what})")


def _section(cls: type, data: Any, path: str) -> Any:
    """A settings dataclass from a mapping: only its fields, each of its annotated type."""
    data = _mapping(data, path, f"the {path} settings")
    hints = get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    _check_keys(data, fields, path, f"in {path}")
    kwargs = {key: _coerce(value, hints[key], f"{path}.{key}") for key, value in data.items()}
    try:
        return cls(**kwargs)
    except ValueError as exc:  # __post_init__ checks (ConfigError is a ValueError too)
        raise ConfigError(f"{path}: {exc}") from None


def _file_fields(cls: type[Objective]) -> dict[str, tuple[Any, bool]]:
    """File key → (type, required) of an objective kind: ``property`` for ``key``; a Range's ``range: [lo, hi]``."""
    hints = get_type_hints(cls)
    out: dict[str, tuple[Any, bool]] = {"kind": (str, True), "property": (str, True)}
    if cls is Range:
        out["range"] = (tuple[float, float], True)
    for f in dataclasses.fields(cls):
        if f.name in ("key", "low", "high") and (f.name == "key" or cls is Range):
            continue
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        out[f.name] = (hints[f.name], required)
    return out


def objective_from_dict(data: Any, path: str = "objective") -> Objective:
    """An objective term from its config form (``kind``, ``property``, fields); errors name ``path``."""
    data = _mapping(data, path, "an objective")
    kinds = ", ".join(OBJECTIVE_KINDS)
    if "kind" not in data:
        raise ConfigError(f"{path}.kind: missing; allowed kinds: {kinds}")
    kind = data["kind"]
    if not isinstance(kind, str) or kind not in OBJECTIVE_KINDS:
        raise ConfigError(f"{path}.kind: unknown objective kind {kind!r}; allowed kinds: {kinds}")
    cls = OBJECTIVE_KINDS[kind]
    spec = _file_fields(cls)
    _check_keys(data, list(spec), path, f"for a {kind} objective", tuple(k for k, (_, req) in spec.items() if req))
    values = {key: _coerce(value, spec[key][0], f"{path}.{key}") for key, value in data.items() if key != "kind"}
    if isinstance(values.get("weight"), float) and values["weight"] < 0:
        raise ConfigError(f"{path}.weight: must be ≥ 0, got {values['weight']}")
    kwargs = {"key": values.pop("property")}
    if cls is Range:
        kwargs["low"], kwargs["high"] = values.pop("range")
    kwargs.update(values)
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _predictors(value: Any, path: str) -> dict[str, str]:
    from smoacs.predictors.registry import predictor_info

    mapping = _coerce(value if value is not None else {}, dict[str, str], path)
    for prop, name in mapping.items():
        try:
            info = predictor_info(name)
        except SmoacsError as exc:
            raise ConfigError(f"{path}.{prop}: {exc}") from None
        if info.property != prop:
            raise ConfigError(f"{path}.{prop}: predictor {name} predicts {info.property!r}, not {prop!r}")
    return mapping


def config_from_dict(data: Mapping[str, Any], default_name: str = "custom") -> RunConfig:
    """Check plain config data (a parsed file, or :meth:`RunConfig.to_dict`) and build a validated RunConfig.

    ``preset`` defaults to ``default_name`` and ``out`` to ``runs/<preset>``; everything else not given takes the
    RunConfig defaults.
    """
    data = _mapping(data, "config", "run settings")
    top = [f.name for f in dataclasses.fields(RunConfig)]
    _check_keys(data, top, "", "at the top level", _REQUIRED_TOP)
    hints = get_type_hints(RunConfig)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in SECTIONS:
            kwargs[key] = _section(SECTIONS[key], value, key)
        elif key in ("predictors", "oracles"):
            kwargs[key] = _predictors(value, key)
        elif key == "objectives":
            if not isinstance(value, list | tuple) or not value:
                raise ConfigError(f"objectives: expected a non-empty list of objective terms, got {_type_name(value)}")
            kwargs[key] = tuple(objective_from_dict(item, f"objectives[{i}]") for i, item in enumerate(value))
        else:
            kwargs[key] = _coerce(value, hints[key], key)
    if not kwargs["predictors"]:
        raise ConfigError("predictors: at least one predictor is required (property: predictor name)")
    kwargs.setdefault("preset", default_name)
    kwargs.setdefault("target", None)
    kwargs.setdefault("out", f"runs/{kwargs['preset']}")
    provided = sorted({*kwargs["predictors"], *DERIVED_PROPERTIES})
    first: dict[str, int] = {}
    for i, objective in enumerate(kwargs["objectives"]):
        if objective.key in first:
            raise ConfigError(
                f"objectives[{i}].property: {objective.key!r} already has a term (objectives[{first[objective.key]}]); "
                "one term per property (each is reported as one <property>_ok criterion)"
            )
        first[objective.key] = i
        if objective.key not in provided:
            raise ConfigError(
                f"objectives[{i}].property: no predictor provides {objective.key!r}; available properties: "
                f"{', '.join(provided)} (add it under predictors)"
            )
    for prop in kwargs.get("oracles", {}):
        if prop not in kwargs["predictors"]:
            raise ConfigError(f"oracles.{prop}: no predictor of this run provides {prop!r}; oracles re-check optimised properties")
    return RunConfig(**kwargs).validate()


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
        block(("preset", "target", "out", "candidates", "batch_size", "seed", "device")),
        block(("predictors", "oracles")) + objectives,
        block(tuple(SECTIONS)),
    ]
    return "\n".join(part.rstrip("\n") + "\n" for part in parts)
