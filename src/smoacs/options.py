"""The options of one run, as ``smoacs run`` takes them, and the one function that turns them into a RunConfig.

:class:`RunOptions` mirrors ``smoacs run``'s flags (a config file or a preset, then overrides); :func:`run_config`
builds and validates the :class:`~smoacs.config.RunConfig`. The CLI (``smoacs run``) and campaigns
(:mod:`smoacs.campaign`) both call it, so a campaign cell is configured exactly as the same command line would be.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from smoacs.config import RunConfig
from smoacs.errors import ConfigError


@dataclass(frozen=True)
class RunOptions:
    """The options of ``smoacs run`` (None: not given, the file's or preset's value stays).

    Attributes:
        config: a config file (.yaml/.yml/.toml/.json or a run.json); exactly one of ``config`` and ``preset``.
        preset: a preset name (``smoacs presets``).
        target: the preset's main target, in its unit (presets only).
        candidates, batch_size, steps, seed, device, threads, out: as the flags of the same names.
        templates: a CIF/POSCAR file or directory used as templates.
        length_bounds: lattice length bounds (min, max), Å.
        predictor: ``PROP=NAME`` assignments (the preset's model becomes the judge).
        ensemble: ``PROP=NAME,NAME[,…]`` assignments: PROP is optimised through an ensemble of those predictors.
        judge: ``PROP=NAME`` held-out judges; no_judge: drop every judge. oracle, no_oracle: their former names
            (deprecated; ``oracle`` prints a warning on stderr).
        physics: ``chgnet`` or ``none``; relax: ``chgnet`` (with physics none: a relaxation check);
            polish_rounds: ``physics.polish_rounds`` (composition-polish rounds; 0: off); polish_replace:
            ``physics.polish_replace`` (escaped candidates restart from a mutated stable one).
        max_copies: ``optimizer.max_composition_copies`` (copy-and-mutate diversity rule; 0: no limit).
        screen: ``physics.screen`` (fraction of the candidates started from the single-anion screen; 0: none).
        method: the search method (a key of :data:`smoacs.search.METHODS`); budget: predictor evaluations per
            candidate (gradient: its steps); anions: ``single`` or ``mixed`` (baselines).
        reference: novelty / known-value reference sets (``--reference``); known_values: ``successes`` or ``all``.
        max_species, dopant_fraction: sublattice limits (``A=1,B=2,X=1``; ``B=0.0:0.25``); allowed_elements:
            ``GROUP=El,…`` items (:func:`smoacs.design.sublattices.parse_limits`).
    """

    config: str | None = None
    preset: str | None = None
    target: float | None = None
    candidates: int | None = None
    batch_size: int | None = None
    steps: int | None = None
    seed: int | None = None
    device: str | None = None
    threads: int | None = None
    out: str | None = None
    templates: str | None = None
    length_bounds: tuple[float, float] | None = None
    predictor: tuple[str, ...] = ()
    ensemble: tuple[str, ...] = ()
    judge: tuple[str, ...] = ()
    no_judge: bool = False
    oracle: tuple[str, ...] = ()
    no_oracle: bool = False
    physics: str | None = None
    relax: str | None = None
    method: str | None = None
    budget: int | None = None
    anions: str | None = None
    reference: tuple[str, ...] = ()
    known_values: str | None = None
    max_species: str | None = None
    dopant_fraction: str | None = None
    allowed_elements: tuple[str, ...] = ()
    polish_rounds: int | None = None
    polish_replace: bool | None = None
    max_copies: int | None = None
    screen: float | None = None

    @classmethod
    def from_namespace(cls, args: Any) -> RunOptions:  # noqa: ANN401 - an argparse.Namespace
        """The options of parsed ``smoacs run`` arguments (attributes missing from ``args`` stay unset)."""
        values = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(cls)}
        for name in ("predictor", "ensemble", "judge", "oracle", "reference", "allowed_elements"):
            values[name] = tuple(values[name] or ())
        values["no_oracle"] = bool(values["no_oracle"])
        values["no_judge"] = bool(values["no_judge"])
        if values["length_bounds"] is not None:
            values["length_bounds"] = tuple(values["length_bounds"])
        return cls(**values)


#: Names of the options (as campaign files spell them; ``-`` is accepted for ``_``).
OPTION_NAMES = tuple(f.name for f in dataclasses.fields(RunOptions))


def run_config(options: RunOptions) -> RunConfig:
    """The validated run configuration of ``options``: the config file or preset, then every given override.

    ConfigError (one line) for a bad value, a ``--target`` with a config file, an unknown property in
    ``predictor``, or a malformed ``PROP=NAME``.
    """
    from smoacs.configfile import load_config
    from smoacs.presets import build_config

    if (options.config is None) == (options.preset is None):
        given = "both a config file and a preset" if options.config is not None else "neither a config file nor a preset"
        raise ConfigError(f"a run needs exactly one of a config file or a preset; got {given}")
    if options.config is not None:
        if options.target is not None:
            raise ConfigError("--target applies to --preset only; a config file sets its targets in `objectives`")
        config = load_config(options.config)
    else:
        config = build_config(options.preset, options.target, options.out)
    changes: dict[str, Any] = {
        name: getattr(options, name)
        for name in ("candidates", "batch_size", "seed", "device", "threads", "out", "steps", "templates", "relax")
        if getattr(options, name) is not None
    }
    if options.length_bounds is not None:
        changes["length_bounds"] = lo, hi = tuple(options.length_bounds)
        r_lo, r_hi = config.templates.length_range  # generated templates' range, narrowed to the new bounds
        if lo < hi and max(r_lo, lo) <= min(r_hi, hi):
            changes["length_range"] = (max(r_lo, lo), min(r_hi, hi))
    if options.reference:
        changes["references"] = tuple(options.reference)
    if options.known_values:
        changes["known_values"] = options.known_values
    if options.physics is not None:
        changes["physics"] = replace(config.physics, potential=options.physics)
    if options.polish_rounds is not None:
        changes["physics"] = replace(changes.get("physics", config.physics), polish_rounds=options.polish_rounds)
    if options.polish_replace is not None:
        changes["physics"] = replace(changes.get("physics", config.physics), polish_replace=options.polish_replace)
    if options.screen is not None:
        changes["physics"] = replace(changes.get("physics", config.physics), screen=options.screen)
    if options.max_copies is not None:
        changes["max_composition_copies"] = options.max_copies
    if options.max_species or options.dopant_fraction or options.allowed_elements:
        from smoacs.design.sublattices import parse_limits

        changes["sublattices"] = parse_limits(
            config.space.sublattices, options.max_species, options.dopant_fraction, options.allowed_elements
        )
    search = {key: getattr(options, key) for key in ("method", "budget", "anions") if getattr(options, key) is not None}
    if search:
        changes["search"] = search
        if search.get("method", config.search.method) == "gradient" and options.budget is not None:
            changes.setdefault("steps", options.budget)  # the gradient's budget is its step count
    changes.update(zip(("predictors", "judge"), _models(config, options), strict=True))
    return config.with_overrides(**changes).validate()


def _models(config: RunConfig, options: RunOptions) -> tuple[dict[str, str], dict[str, str]]:
    """The predictors and judges after ``predictor`` / ``ensemble`` / ``judge`` (``oracle``) / ``no_judge``."""
    from smoacs.predictors.registry import composite_spec

    predictors, judges = dict(config.predictors), dict(config.judge)
    for prop, name in assignments(options.predictor, "--predictor"):
        if prop not in predictors:
            raise ConfigError(f"--predictor {prop}={name}: this run has no property {prop!r} ({', '.join(predictors)})")
        if judges.get(prop) == name:  # swapping models: the preset's model becomes the judge
            judges[prop] = predictors[prop]
        predictors[prop] = name
    for prop, names in assignments(options.ensemble, "--ensemble"):
        if prop not in predictors:
            raise ConfigError(f"--ensemble {prop}={names}: this run has no property {prop!r} ({', '.join(predictors)})")
        members = [m.strip() for m in names.split(",")]
        if len(members) < 2 or not all(members):
            raise ConfigError(f"--ensemble expects PROPERTY=PREDICTOR,PREDICTOR[,…] (two or more), got {prop}={names}")
        predictors[prop] = composite_spec("ensemble", members)
    if options.oracle:  # (--no-oracle stays silent: scripts and tests of earlier versions use it)
        print("smoacs: warning: --oracle is deprecated; use --judge (same meaning)", file=sys.stderr)
    for prop, name in assignments([*options.judge, *options.oracle], "--judge"):
        judges[prop] = name
    if options.no_judge or options.no_oracle:
        judges = {}
    return predictors, judges


def assignments(values: tuple[str, ...] | list[str] | None, flag: str) -> list[tuple[str, str]]:
    """``PROP=NAME`` strings as (prop, name) pairs; ConfigError naming ``flag`` for a malformed one."""
    pairs = []
    for value in values or []:
        prop, sep, name = str(value).partition("=")
        if not sep or not prop or not name:
            raise ConfigError(f"{flag} expects PROPERTY=PREDICTOR (e.g. band_gap=megnet-band-gap), got {value!r}")
        pairs.append((prop.strip(), name.strip()))
    return pairs


def options_from_mapping(values: Mapping[str, Any], where: str = "options") -> RunOptions:
    """RunOptions from plain data (a campaign file's ``base`` plus a grid cell): keys are the option names
    (``batch-size`` or ``batch_size``); ``predictor``/``ensemble``/``judge``/``oracle`` take ``PROP=NAME``, a list of them or a
    ``{PROP: NAME}`` mapping. ConfigError naming ``where`` and the key for an unknown key or a wrong type."""
    kwargs: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = str(raw_key).replace("-", "_")
        if key not in OPTION_NAMES:
            raise ConfigError(f"{where}.{raw_key}: not a run option; allowed: {', '.join(OPTION_NAMES)}")
        kwargs[key] = _option_value(key, value, f"{where}.{raw_key}")
    return RunOptions(**kwargs)


_INTS = ("candidates", "batch_size", "steps", "seed", "threads", "budget", "polish_rounds", "max_copies")
_STRINGS = ("config", "preset", "device", "out", "templates", "physics", "relax", "method", "anions", "known_values",
            "max_species", "dopant_fraction")  # fmt: skip


def _option_value(key: str, value: Any, path: str) -> Any:  # noqa: ANN401 - one option's plain value
    """One option's value checked and converted (numbers, strings, the model assignments)."""
    if key in _INTS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if key in ("target", "screen"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if key in _STRINGS:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    if key in ("no_oracle", "no_judge", "polish_replace"):
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if key == "length_bounds":
        if not (isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, int | float) for v in value)):
            raise ConfigError(f"{path}: expected [MIN, MAX] in Å, got {value!r}")
        return (float(value[0]), float(value[1]))
    if isinstance(value, Mapping):  # predictor / ensemble / judge / oracle / allowed_elements: {PROP: NAME}
        return tuple(f"{prop}={name}" for prop, name in value.items())
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
        shape = "a string or a list of them" if key == "reference" else "PROP=NAME, a list of them or a mapping"
        raise ConfigError(f"{path}: expected {shape}, got {value!r}")
    if key in ("predictor", "ensemble", "judge", "oracle"):
        assignments(items, path)
    return tuple(items)


__all__ = ["OPTION_NAMES", "RunOptions", "assignments", "options_from_mapping", "run_config"]
