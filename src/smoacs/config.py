"""A validated run configuration: everything that determines a run, serialisable to run.json.

:class:`RunConfig` and its sections; :func:`config_from_dict` checks plain data (a parsed file, or
:meth:`RunConfig.to_dict`) key by key; :meth:`RunConfig.validate` checks cross-field consistency. File formats
(YAML, TOML, JSON, the dumped YAML) are :mod:`smoacs.configfile`'s.
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Mapping
from os import PathLike
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Union, get_args, get_origin, get_type_hints

from smoacs.design.space import SpaceSettings
from smoacs.errors import ConfigError
from smoacs.evaluate.evaluator import EvaluationSettings
from smoacs.errors import SmoacsError
from smoacs.objectives.derived import DERIVED_TERMS
from smoacs.objectives.terms import OBJECTIVE_KINDS, Objective, Range, objective_to_dict
from smoacs.optimize.loop import OptimizerSettings
from smoacs.physics.settings import PhysicsSettings
from smoacs.search.base import SearchSettings

DEVICES = ("auto", "cpu", "cuda")
TEMPLATE_KINDS = ("perovskite", "prototypes", "perov5", "supercon", "supercon-test", "files")


@dataclass(frozen=True)
class TemplateSettings:
    """Where templates come from.

    Attributes:
        kind: ``"perovskite"`` (generated ABX3 cells), ``"prototypes"`` (AFLOW prototypes bundled with pymatgen),
            ``"perov5"`` / ``"supercon"`` / ``"supercon-test"`` (shipped data sets) or ``"files"`` (``path``, as general templates).
            Library kinds are read in name order; templates are cycled when there are fewer than candidates.
        length_range: range (Å) of the seeded random unit-cell lengths of generated perovskites.
        supercell: n for n×n×n perovskite supercells.
        path: a CIF/POSCAR file or a directory of them to use instead of generated or library templates (read as
            ABX3 cells when ``kind`` is ``"perovskite"``, as general templates otherwise).
        max_atoms: library templates (prototypes, data sets) with more sites are left out.
    """

    kind: str = "perovskite"
    length_range: tuple[float, float] = (3.0, 7.0)
    supercell: int = 1
    path: str | None = None
    max_atoms: int = 10



#: Placeholder predictor of a property that the user must supply (their own model file); see :func:`check_user_models`.
USER_MODEL = "<your {prop} model>"
#: How to supply each user model (shown when it is missing).
USER_MODEL_HINTS = {
    "e_hull": "a JARVIS E_hull ALIGNN model, e.g. --predictor e_hull=alignn:/path/to/jv_ehull_alignn.zip",
}


def check_user_models(config: RunConfig) -> None:
    """Stop with one line when a preset's user-model placeholder was not replaced by ``--predictor PROP=...``."""
    for prop, name in config.predictors.items():
        if name == USER_MODEL.format(prop=prop):
            hint = USER_MODEL_HINTS.get(prop, f"--predictor {prop}=FAMILY:PATH")
            raise ConfigError(f"preset {config.preset} needs your own {prop} model: pass {hint}")


@dataclass(frozen=True)
class RunConfig:
    """A complete run.

    Attributes:
        preset: name of the preset it came from (informational).
        candidates: number of candidates (templates) optimised.
        batch_size: candidates per mini-batch (optimised together, written when finished).
        seed: seeds templates, initial logits, mutations (Python, numpy and torch are seeded from it).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        threads: torch CPU threads of the run (0: the cores this process may use); recorded in run.json.
        out: output directory.
        predictors: property → predictor spec (optimised through); an ensemble is the spec
            ``ensemble[MEMBER,…]`` (config files may write it as ``ensemble: {property: [MEMBER, …]}``).
        judge: property → a held-out predictor that re-checks the discrete candidates (``<property>_judge``,
            ``<property>_judge_ok``; reported only: never in the loss nor in ``success``). It must not be the
            optimised predictor nor a member of its ensemble. Files of earlier versions call it ``oracles``.
        objectives: objective terms (they also define the success criteria).
        templates, space, optimizer, evaluation: settings of each stage.
        search: the search method (``gradient``: the optimiser configured by ``optimizer``), its budget (predictor
            evaluations per candidate) and the baselines' anion mode.
        physics: the universal potential in the loop and in the verdict (``potential: none`` = plain SMOACS).

    Results depend on ``batch_size`` as well as ``seed``: copy-and-mutate acts within a mini-batch, so the same
    seed with another batch size gives other candidates (``--resume`` refuses a different batch size).
    """

    preset: str
    out: str
    predictors: dict[str, str]
    objectives: tuple[Objective, ...]
    judge: dict[str, str] = field(default_factory=dict)
    candidates: int = 256
    batch_size: int = 256
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    templates: TemplateSettings = field(default_factory=TemplateSettings)
    space: SpaceSettings = field(default_factory=SpaceSettings)
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    physics: PhysicsSettings = field(default_factory=PhysicsSettings)

    @property
    def oracles(self) -> dict[str, str]:
        """Former name of :attr:`judge` (deprecated)."""
        return self.judge

    @property
    def target(self) -> float | None:
        """The main target: the target of the first ``window`` objective, else the threshold of the first
        ``maximize`` objective that has one (None otherwise). Derived from the objectives, so that the report title
        and the optimised objective cannot disagree."""
        window = next((o for o in self.objectives if o.kind == "window"), None)
        if window is not None:
            return float(window.target)  # type: ignore[union-attr]
        threshold = next((o.threshold for o in self.objectives if o.kind == "maximize" and o.threshold is not None), None)  # type: ignore[union-attr]
        return None if threshold is None else float(threshold)

    def validate(self) -> RunConfig:
        """Check cross-field consistency; raise :class:`ConfigError` naming the offending setting."""
        if self.candidates < 1:
            raise ConfigError(f"candidates must be ≥ 1, got {self.candidates}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be ≥ 1, got {self.batch_size}")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must lie in [0, 2**32 - 1] (numpy's seed range), got {self.seed}")
        if self.device not in DEVICES:
            raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.threads < 0:
            raise ConfigError(f"threads must be ≥ 0 (0: the cores this process may use), got {self.threads}")
        lo, hi = self.space.length_bounds
        if not 0 < lo < hi:
            raise ConfigError(f"length bounds (space.length_bounds) must satisfy 0 < min < max, got ({lo}, {hi})")
        r_lo, r_hi = self.templates.length_range
        generated = self.templates.kind == "perovskite" and not self.templates.path  # the only user of length_range
        if generated and not lo <= r_lo <= r_hi <= hi:
            raise ConfigError(
                f"template length range (templates.length_range) ({r_lo}, {r_hi}) Å must lie within the length bounds "
                f"(space.length_bounds) ({lo}, {hi}) Å"
            )
        a_lo, a_hi = self.evaluation.angle_range
        if not 0 < a_lo <= a_hi < 180:
            raise ConfigError(f"angle range (evaluation.angle_range) must satisfy 0 < min ≤ max < 180, got ({a_lo}, {a_hi})")
        if self.templates.supercell < 1:
            raise ConfigError(f"templates.supercell must be ≥ 1, got {self.templates.supercell}")
        if self.templates.kind not in TEMPLATE_KINDS:
            raise ConfigError(f"templates.kind must be one of {', '.join(TEMPLATE_KINDS)}, got {self.templates.kind!r}")
        if self.templates.kind == "files" and not self.templates.path:
            raise ConfigError("template kind 'files' needs a path (--templates FILE_OR_DIR)")
        if self.templates.max_atoms < 1:
            raise ConfigError(f"templates.max_atoms must be ≥ 1, got {self.templates.max_atoms}")
        _check_optimizer(self.optimizer)
        _check_margins(self.objectives)
        from smoacs.evaluate.relaxation import check_relaxer
        from smoacs.search import check_settings

        check_settings(self.search, self.optimizer, self.space)

        check_relaxer(self.evaluation.relax)
        if self.physics.enabled:
            check_relaxer(self.physics.potential)
        from smoacs.predictors.registry import check_options, predictor_info

        check_user_models(self)
        for prop, name in [*self.predictors.items(), *self.judge.items()]:
            if predictor_info(name, prop).property != prop:
                raise ConfigError(f"predictor {name} predicts {predictor_info(name, prop).property}, not {prop}")
            check_options(name)
        for prop, name in self.judge.items():
            if prop not in self.predictors:
                raise ConfigError(f"judge {name} is for {prop!r}, which no predictor of this run provides")
            check_held_out(prop, name, self.predictors[prop])
        provided = set(self.predictors) | set(DERIVED_PROPERTIES)
        keys = [objective.key for objective in self.objectives]
        for key in dict.fromkeys(k for k in keys if keys.count(k) > 1):
            raise ConfigError(f"more than one objective term on {key!r}; one term per property (one {key}_ok criterion)")
        for objective in self.objectives:
            if objective.key not in provided:
                raise ConfigError(
                    f"objective on {objective.key!r} has no predictor; configured properties: {', '.join(sorted(provided))}"
                )
        return self

    def with_overrides(self, **changes: Any) -> RunConfig:
        """A copy with settings replaced (not validated: call :meth:`validate`).

        Accepted names: every top-level field (``candidates``, ``batch_size``, ``seed``, ``device``, ``threads``, ``out``,
        ``predictors``, ``judge`` (``oracles``: its former name), ``objectives``, ``preset``); ``ensemble``, a mapping
        property → member specs, sets those properties' predictors to ensembles; a section (``templates``, ``space``, ``optimizer``,
        ``evaluation``, ``search``) as its settings object or as a mapping of the fields to change
        (``optimizer={"steps": 30}``); and any section field whose name is unique across sections, by itself
        (``steps=30``, ``length_bounds=(2, 9)``, ``relax="chgnet"``, ``top_ratio=0.5``). ``templates`` given as a
        string or path is the template path (as ``--templates``). A new ``steps`` drops the copy-and-mutate steps at
        or beyond it unless ``copy_mutate_steps`` is given too. Unknown names raise ``TypeError``.
        """
        top = {f.name for f in dataclasses.fields(self)}
        section_changes: dict[str, dict[str, Any]] = {}
        direct: dict[str, Any] = {}
        if "oracles" in changes:  # the former name of judge
            changes = {("judge" if k == "oracles" else k): v for k, v in changes.items()}
        if "ensemble" in changes:
            ensembles = changes.pop("ensemble")
            base = dict(changes.get("predictors", self.predictors))
            changes["predictors"] = {**base, **_ensembles(ensembles, "ensemble")}
        for name, value in changes.items():
            if name == "templates" and isinstance(value, str | PathLike):
                section_changes.setdefault("templates", {})["path"] = str(value)
            elif name in SECTIONS and isinstance(value, Mapping):
                section_changes.setdefault(name, {}).update(value)
            elif name in top:
                direct[name] = value
            else:
                owners = [s for s, cls in SECTIONS.items() if name in {f.name for f in dataclasses.fields(cls)}]
                if len(owners) != 1:
                    problem = "is in several sections (" + ", ".join(owners) + "); pass it as SECTION={...}" if owners else (
                        "is not a setting; accepted: " + ", ".join(sorted(top | set(OVERRIDE_FIELDS))))
                    raise TypeError(f"with_overrides: {name!r} {problem}")
                section_changes.setdefault(owners[0], {})[name] = value
        optimizer = section_changes.get("optimizer", {})
        if "steps" in optimizer and "copy_mutate_steps" not in optimizer:
            base = direct.get("optimizer", self.optimizer)
            optimizer["copy_mutate_steps"] = tuple(s for s in base.copy_mutate_steps if s < optimizer["steps"])
        for section, fields in section_changes.items():
            try:
                direct[section] = replace(direct.get(section, getattr(self, section)), **fields)
            except ValueError as exc:
                raise ConfigError(f"{section}: {exc}") from None
        return replace(self, **direct)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, not tuples) for run.json: the config-file format of ``docs/CONFIG.md``."""
        data = _plain(asdict(self))
        data["objectives"] = [_plain(objective_to_dict(o)) for o in self.objectives]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        """Check and build from :meth:`to_dict`'s form (or a parsed config file); ``from_dict(c.to_dict()) == c``."""
        return config_from_dict(data)


def check_held_out(prop: str, judge: str, optimised: str) -> None:
    """ConfigError unless the judge of ``prop`` differs from the optimised predictor and from each of its members."""
    from smoacs.predictors.registry import spec_members, spec_key

    seen = {spec_key(member) for member in spec_members(optimised)}
    for member in spec_members(judge):
        if spec_key(member) in seen:
            raise ConfigError(
                f"judge for {prop!r} must be held out: {member} is optimised through ({optimised}); choose another "
                "judge (--judge PROP=NAME) or none (--no-judge)"
            )


def _ensembles(value: Any, path: str) -> dict[str, str]:
    """The ``ensemble`` shorthand: property → member specs (a list, or one comma-separated string), or a mapping
    ``{members: [...], value: mean | median | q, spread: range | sd}`` → property → ``ensemble[…]`` spec."""
    from smoacs.predictors.registry import composite_spec

    out = {}
    for prop, entry in _mapping(value, path, "property → ensemble members").items():
        options: dict[str, Any] = {}
        if isinstance(entry, Mapping):
            _check_keys(entry, ["members", "value", "spread"], f"{path}.{prop}", "of an ensemble", ("members",))
            options = {k: v for k, v in entry.items() if k != "members"}
            entry = entry["members"]
        members = entry.split(",") if isinstance(entry, str) else entry
        members = list(_coerce(members, tuple[str, ...], f"{path}.{prop}"))
        if len(members) < 2 or not all(m.strip() for m in members):
            raise ConfigError(f"{path}.{prop}: an ensemble needs at least two member predictors, got {members}")
        out[prop] = composite_spec("ensemble", members, **options)
    return out


def _check_optimizer(settings: OptimizerSettings) -> None:
    """Optimiser settings that make no sense (zero rebuild interval, ratios outside [0, 1], unreachable steps)."""
    if settings.rebuild_every < 1:
        raise ConfigError(f"optimizer.rebuild_every must be ≥ 1 (steps between neighbour-list rebuilds), got {settings.rebuild_every}")
    for name in ("top_ratio", "keep_probability", "lr_floor"):
        value = getattr(settings, name)
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"optimizer.{name} must lie in [0, 1], got {value}")
    if settings.mutation_noise < 0:
        raise ConfigError(f"optimizer.mutation_noise must be ≥ 0, got {settings.mutation_noise}")
    late = [step for step in settings.copy_mutate_steps if not 0 <= step < settings.steps]
    if late:
        raise ConfigError(
            f"optimizer.copy_mutate_steps: step(s) {late} lie outside the run's steps 0…{settings.steps - 1} "
            f"(optimizer.steps = {settings.steps}); they would never happen"
        )
    if settings.min_distance_cutoff <= 0:
        raise ConfigError(f"optimizer.min_distance_cutoff must be > 0 Å, got {settings.min_distance_cutoff}")


def _check_margins(objectives: tuple[Objective, ...]) -> None:
    """Margins that make no sense: a window's evaluation margin 0 or tighter than its training margin, negative
    margins of below/above terms."""
    for i, objective in enumerate(objectives):
        margin = getattr(objective, "margin", 0.0)
        if margin < 0:
            raise ConfigError(f"objectives[{i}].margin must be ≥ 0 ({objective.kind} on {objective.key}), got {margin}")
        if objective.kind == "window":
            eval_margin = objective.eval_margin  # type: ignore[union-attr]
            if not eval_margin > 0 or eval_margin < margin:
                raise ConfigError(
                    f"objectives[{i}].eval_margin must be > 0 and ≥ the training margin ({margin}) of the window on "
                    f"{objective.key}, got {eval_margin}"
                )


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


#: Section name → settings class of the nested sections.
SECTIONS: dict[str, type] = {
    "templates": TemplateSettings,
    "space": SpaceSettings,
    "optimizer": OptimizerSettings,
    "evaluation": EvaluationSettings,
    "search": SearchSettings,
    "physics": PhysicsSettings,
}
#: Quantities every run provides besides its predictors (objectives may constrain them): the derived terms.
DERIVED_PROPERTIES = tuple(term.key for term in DERIVED_TERMS)
_REQUIRED_TOP = ("predictors", "objectives")
#: Section fields accepted by name in :meth:`RunConfig.with_overrides` (unique across sections).
OVERRIDE_FIELDS = tuple(
    name for name in dict.fromkeys(f.name for cls in SECTIONS.values() for f in dataclasses.fields(cls))
    if sum(name in {f.name for f in dataclasses.fields(cls)} for cls in SECTIONS.values()) == 1
)


# ---- checking --------------------------------------------------------------------------------------------------------
def type_name(value: Any) -> str:
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
        if dataclasses.is_dataclass(args[1]):
            return "a mapping of names to settings"
        return "a mapping of names to strings"
    return {bool: "a boolean (true/false)", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


def _wrong(path: str, hint: Any, value: Any) -> ConfigError:
    shown = repr(value) if not isinstance(value, list | dict) else type_name(value)
    return ConfigError(f"{path}: expected {_describe(hint)}, got {shown} ({type_name(value)})")


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
    if dataclasses.is_dataclass(hint):  # nested settings, e.g. space.sublattices.B
        return _section(hint, value, path)
    raise TypeError(f"unsupported annotation {hint!r} at {path}")  # a programming error, not a user error


def _mapping(value: Any, path: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: expected {what} (a mapping), got {type_name(value)}")
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
            info = predictor_info(name, prop)
        except SmoacsError as exc:
            raise ConfigError(f"{path}.{prop}: {exc}") from None
        if info.property != prop:
            raise ConfigError(f"{path}.{prop}: predictor {name} predicts {info.property!r}, not {prop!r}")
    return mapping


def config_from_dict(data: Mapping[str, Any], default_name: str = "custom") -> RunConfig:
    """Check plain config data (a parsed file, or :meth:`RunConfig.to_dict`) and build a validated RunConfig.

    ``preset`` defaults to ``default_name`` and ``out`` to ``runs/<preset>``; everything else not given takes the
    RunConfig defaults, except that default copy-and-mutate steps at or beyond a given ``optimizer.steps`` are
    dropped (explicit ``copy_mutate_steps`` outside the steps are an error). A top-level ``target`` (files and
    run.json of earlier versions) must agree with the main window objective, from which it is now derived.
    """
    data = _mapping(data, "config", "run settings")
    top = [f.name for f in dataclasses.fields(RunConfig)]
    required = _REQUIRED_TOP if "ensemble" not in data else tuple(k for k in _REQUIRED_TOP if k != "predictors")
    _check_keys(data, [*top, "target", "ensemble", "oracles"], "", "at the top level", required)
    if "oracles" in data:  # the former name of judge
        if "judge" in data:
            raise ConfigError("oracles: the former name of judge; give one of them, not both")
        data = {("judge" if k == "oracles" else k): v for k, v in data.items()}
    hints = get_type_hints(RunConfig)
    kwargs: dict[str, Any] = {}
    given_target = _coerce(data.get("target"), float | None, "target")  # older files and run.json: derived now
    for key, value in data.items():
        if key in ("target", "ensemble"):
            continue
        if key in SECTIONS:
            kwargs[key] = _section(SECTIONS[key], value, key)
            if key == "optimizer" and "copy_mutate_steps" not in value:  # the defaults that fall inside its steps
                steps = kwargs[key].steps
                kwargs[key] = replace(kwargs[key], copy_mutate_steps=tuple(s for s in kwargs[key].copy_mutate_steps if s < steps))
        elif key in ("predictors", "judge"):
            kwargs[key] = _predictors(value, key)
        elif key == "objectives":
            if not isinstance(value, list | tuple) or not value:
                raise ConfigError(f"objectives: expected a non-empty list of objective terms, got {type_name(value)}")
            kwargs[key] = tuple(objective_from_dict(item, f"objectives[{i}]") for i, item in enumerate(value))
        else:
            kwargs[key] = _coerce(value, hints[key], key)
    kwargs.setdefault("predictors", {})
    if "ensemble" in data:  # shorthand: these properties are optimised through ensembles of the given members
        kwargs["predictors"] = {**kwargs["predictors"], **_predictors(_ensembles(data["ensemble"], "ensemble"), "ensemble")}
    if not kwargs["predictors"]:
        raise ConfigError("predictors: at least one predictor is required (property: predictor name)")
    kwargs.setdefault("preset", default_name)
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
    for prop, name in kwargs.get("judge", {}).items():
        if prop not in kwargs["predictors"]:
            raise ConfigError(f"judge.{prop}: no predictor of this run provides {prop!r}; judges re-check optimised properties")
        try:
            check_held_out(prop, name, kwargs["predictors"][prop])
        except ConfigError as exc:
            raise ConfigError(f"judge.{prop}: {exc}") from None
    config = RunConfig(**kwargs)
    if given_target is not None and given_target != config.target:
        raise ConfigError(
            f"target: {given_target:g} disagrees with the objectives (main window target: {config.target}); the target "
            "is read from the window objective (objectives[…].target) — drop the `target` key"
        )
    return config.validate()


__all__ = ["DERIVED_PROPERTIES", "SECTIONS", "RunConfig", "TemplateSettings", "config_from_dict", "objective_from_dict"]
