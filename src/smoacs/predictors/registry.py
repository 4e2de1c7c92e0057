"""Predictor registry: declarative tables from names (and path families) to factories, resolved lazily.

Three ways to name a predictor (a *spec*), wherever one is accepted (config ``predictors``/``judge``, ``--predictor``,
``smoacs predict``):

* ``NAME`` — a registered predictor, e.g. ``cgcnn-band-gap``;
* ``NAME:key=value[:key=value]`` — the same with keyword options for its factory, e.g.
  ``megnet-mf-band-gap:fidelity=pbe``;
* ``FAMILY:PATH[:key=value]`` — a model loaded from a user path by a path family, e.g. ``alignn:/x/model.zip``;
* ``COMPOSITE[SPEC,SPEC,…][:key=value]`` — a predictor built from member specs, e.g.
  ``ensemble[cgcnn-band-gap,megnet-mf-band-gap:fidelity=pbe]:value=median`` (:mod:`smoacs.predictors.ensemble`).

Tables:

* :data:`BUILTIN` — name → ``"module:attribute"``, the attribute being a :class:`PredictorEntry` (info + factory) or
  a mapping of names to entries. Importing the module must not load weights. Adding a predictor: one line here.
* :data:`PATH_FAMILIES` — family → ``"module:function"`` with ``from_path(path: str, property: str | None = None,
  **options) -> Predictor``. Adding a family: one line here.
* :data:`COMPOSITES` — name → ``"module:attribute"``, a :class:`CompositeEntry` (info from the members' infos, factory
  from the loaded members). Adding one: one line here.
* Entry points extend the first two: group ``smoacs.predictors`` (name → a PredictorEntry) and ``smoacs.predictor_families``
  (family → a ``from_path`` function). :func:`register` and :func:`register_path_family` do the same at run time.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache, partial
from typing import Any, Literal, get_args, get_origin, get_type_hints

import torch

from smoacs.errors import PredictorError
from smoacs.predictors.base import CompositeEntry, Predictor, PredictorEntry, PredictorInfo

#: Built-in predictors: name → "module:attribute" (a PredictorEntry, or a mapping holding one under this name).
BUILTIN: dict[str, str] = {
    "cgcnn-band-gap": "smoacs.predictors.cgcnn:ENTRIES",
    "cgcnn-formation-energy": "smoacs.predictors.cgcnn:ENTRIES",
    "cgcnn-bulk-modulus": "smoacs.predictors.cgcnn:ENTRIES",
    "cgcnn-shear-modulus": "smoacs.predictors.cgcnn:ENTRIES",
    "cgcnn-efermi": "smoacs.predictors.cgcnn:ENTRIES",
    "cgcnn-total-energy": "smoacs.predictors.cgcnn:ENTRIES",
    "cgcnn-poisson-ratio": "smoacs.predictors.cgcnn:ENTRIES",
    "megnet-band-gap": "smoacs.predictors.megnet:ENTRIES",
    "megnet-mf-band-gap": "smoacs.predictors.megnet:ENTRIES",
    "megnet-formation-energy": "smoacs.predictors.megnet:ENTRIES",
    "megnet-formation-energy-2018": "smoacs.predictors.megnet:ENTRIES",
    "megnet-bulk-modulus": "smoacs.predictors.megnet:ENTRIES",
    "megnet-shear-modulus": "smoacs.predictors.megnet:ENTRIES",
    "megnet-efermi": "smoacs.predictors.megnet:ENTRIES",
    "chgnet": "smoacs.predictors.chgnet:ENTRY",
    "chgnet-pressure": "smoacs.predictors.chgnet:ENTRIES",
    "chgnet-max-force": "smoacs.predictors.chgnet:ENTRIES",
    "chgnet-head-supercon-tc": "smoacs.predictors.shipped:ENTRIES",
    "cgcnn-supercon-tc": "smoacs.predictors.shipped:ENTRIES",
    "crystalformer-supercon-tc": "smoacs.predictors.shipped:ENTRIES",
    "cgcnn-perov5-heat-of-formation": "smoacs.predictors.shipped:ENTRIES",
    "chgnet-head-perov5-band-gap": "smoacs.predictors.shipped:ENTRIES",
}
#: Path families: family → "module:function" (``from_path(path, property=None, **options) -> Predictor``).
PATH_FAMILIES: dict[str, str] = {
    "alignn": "smoacs.predictors.alignn:from_path",
    "crystalformer": "smoacs.predictors.crystalformer:from_path",
    "cgcnn": "smoacs.predictors.cgcnn:from_path",
    "chgnet-head": "smoacs.predictors.chgnet_head:from_path",
}
#: Composite predictors: name → "module:attribute" (a CompositeEntry); spec ``NAME[MEMBER,…][:key=value]``.
COMPOSITES: dict[str, str] = {
    "ensemble": "smoacs.predictors.ensemble:ENTRY",
}
ENTRY_POINT_GROUP = "smoacs.predictors"
FAMILY_ENTRY_POINT_GROUP = "smoacs.predictor_families"

PathLoader = Callable[..., Predictor]


@dataclass(frozen=True)
class PredictorSpec:
    """A parsed predictor spec.

    Attributes:
        name: registry name, or the path family when ``path`` is set.
        path: the model path of a ``FAMILY:PATH`` spec, else None.
        options: keyword options for the factory / ``from_path``.
        members: the member specs of a composite (``NAME[MEMBER,…]``), else empty.
    """

    name: str
    path: str | None = None
    options: dict[str, object] = field(default_factory=dict)
    members: tuple[str, ...] = ()


@dataclass
class _Registry:
    """Run-time additions (:func:`register`, :func:`register_path_family`) and caches."""

    entries: dict[str, PredictorEntry] = field(default_factory=dict)
    families: dict[str, PathLoader] = field(default_factory=dict)
    path_infos: dict[tuple[str, str | None], PredictorInfo] = field(default_factory=dict)


_STATE = _Registry()


def _resolve(target: str) -> Any:  # noqa: ANN401
    module, _, attribute = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise PredictorError(f"cannot load {target}: {exc}") from None


@cache
def _entry_points(group: str) -> dict[str, Any]:
    return {ep.name: ep for ep in metadata.entry_points(group=group)}


def _tables() -> dict[str, str | PredictorEntry]:
    """Every known name → its table target or entry (built-ins, entry points, run-time registrations)."""
    names: dict[str, str | PredictorEntry] = dict(BUILTIN)
    names.update({name: ep.value for name, ep in _entry_points(ENTRY_POINT_GROUP).items() if name not in names})
    names.update(_STATE.entries)
    return names


def _families() -> dict[str, str | PathLoader]:
    families: dict[str, str | PathLoader] = dict(PATH_FAMILIES)
    eps = _entry_points(FAMILY_ENTRY_POINT_GROUP)
    families.update({name: ep.value for name, ep in eps.items() if name not in families})
    families.update(_STATE.families)
    return families


@cache
def _weights_version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _entry(name: str) -> PredictorEntry:
    target = _tables().get(name)
    if target is None:
        known = ", ".join(sorted(_tables()))
        families = ", ".join(sorted(_families()))
        hint = f"; path families (FAMILY:PATH): {families}" if families else ""
        hint += f"; composites (NAME[SPEC,…]): {', '.join(sorted(COMPOSITES))}"
        raise PredictorError(f"unknown predictor {name!r}; known predictors: {known}{hint}")
    if isinstance(target, PredictorEntry):
        return target
    found = _resolve(target)
    entry = found[name] if isinstance(found, Mapping) else found
    if not isinstance(entry, PredictorEntry):
        raise PredictorError(f"{target} does not give a PredictorEntry for {name!r}")
    if entry.info.weights_package and not entry.info.weights_version:
        entry = replace(entry, info=replace(entry.info, weights_version=_weights_version(entry.info.weights_package)))
    return entry


def register(info: PredictorInfo, factory: Callable[..., Predictor]) -> None:
    """Register a predictor factory under ``info.name`` at run time (factories take keyword options only)."""
    if info.name in _tables() or info.name in _families():
        raise PredictorError(f"predictor {info.name!r} is registered twice")
    _STATE.entries[info.name] = PredictorEntry(info, factory)


def register_path_family(family: str, loader: str | PathLoader) -> None:
    """Register a path family at run time: ``loader`` is ``from_path`` or its ``"module:function"``."""
    if family in _families() or family in _tables():
        raise PredictorError(f"path family {family!r} is registered twice")
    _STATE.families[family] = _resolve(loader) if isinstance(loader, str) else loader


def _parse_value(text: str) -> object:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def _option(part: str) -> tuple[str, object] | None:
    key, sep, text = part.partition("=")
    if not sep or not key.strip().isidentifier():
        return None
    return key.strip(), _parse_value(text.strip())


def _read_composite(spec: str) -> PredictorSpec:
    """``NAME[MEMBER,…][:key=value…]`` → its name, member specs (checked to parse) and options."""
    text = spec.strip()
    name, _, rest = text.partition("[")
    inner, close, tail = rest.rpartition("]")
    if not close:
        raise PredictorError(f"predictor spec {spec!r}: {name.strip()}[…] is missing its closing ']'")
    if "[" in inner:
        raise PredictorError(f"predictor spec {spec!r}: composites cannot be nested")
    members = tuple(part.strip() for part in inner.split(","))
    if not all(members):
        raise PredictorError(f"predictor spec {spec!r}: empty member in {name.strip()}[…]")
    for member in members:
        read_spec(member)
    if tail and not tail.startswith(":"):
        raise PredictorError(f"predictor spec {spec!r}: expected ':key=value' options after ']', got {tail!r}")
    options: dict[str, object] = {}
    for part in tail.split(":")[1:]:
        option = _option(part)
        if option is None:
            raise PredictorError(f"predictor option must be key=value, got {part!r} in {spec!r}")
        options[option[0]] = option[1]
    return PredictorSpec(name.strip(), None, options, members)


def composite_spec(name: str, members: list[str] | tuple[str, ...], **options: object) -> str:
    """The spec text of a composite, e.g. ``composite_spec("ensemble", ["a", "b"])`` → ``"ensemble[a,b]"``."""
    tail = "".join(f":{key}={value}" for key, value in options.items())
    return f"{name}[{','.join(m.strip() for m in members)}]{tail}"


def split_specs(text: str) -> list[str]:
    """Comma-separated specs, commas inside ``[…]`` (an ensemble's members) kept: ``"a,ensemble[b,c]"`` → 2 specs."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [part.strip() for part in parts if part.strip()]


def spec_members(spec: str) -> tuple[str, ...]:
    """The member specs of a composite spec, or ``(spec,)`` for any other."""
    parsed = read_spec(spec)
    return parsed.members or (spec.strip(),)


def spec_key(spec: str) -> tuple[object, ...]:
    """A comparable form of a spec (name, path, sorted options, member keys): equal for the same model however the
    spec is spelled (spaces, option order)."""
    parsed = read_spec(spec)
    options = tuple(sorted((key, str(value)) for key, value in parsed.options.items()))
    return (parsed.name, parsed.path, options, tuple(spec_key(member) for member in parsed.members))


def read_spec(spec: str) -> PredictorSpec:
    """Parse a spec (see the module docstring). Option values become int, float or bool when they parse as such.

    In ``FAMILY:PATH[:key=value]`` the trailing ``key=value`` segments are options and the rest is the path.
    """
    if spec.strip().partition("[")[0].strip() in COMPOSITES and "[" in spec:
        return _read_composite(spec)
    head, *parts = spec.strip().split(":")
    head = head.strip()
    if head in _families():
        options: dict[str, object] = {}
        while parts and (option := _option(parts[-1])) is not None:
            options = {option[0]: option[1], **options}
            parts.pop()
        path = ":".join(parts).strip()
        if not path:
            raise PredictorError(f"predictor spec {spec!r}: path family {head!r} needs a path ({head}:PATH)")
        return PredictorSpec(head, path, options)
    options = {}
    for part in parts:
        option = _option(part)
        if option is None:
            raise PredictorError(f"predictor option must be key=value, got {part!r} in {spec!r}")
        options[option[0]] = option[1]
    return PredictorSpec(head, None, options)


def parse_spec(spec: str) -> tuple[str, dict[str, object]]:
    """``(name, options)`` of a ``NAME[:key=value…]`` spec (see :func:`read_spec` for path specs too)."""
    parsed = read_spec(spec)
    return parsed.name, parsed.options


def available_predictors() -> list[PredictorInfo]:
    """Info of every registered predictor, sorted by name."""
    return [_entry(name).info for name in sorted(_tables())]


def available_path_families() -> list[str]:
    """Names of the path families (``FAMILY:PATH`` specs), sorted."""
    return sorted(_families())


def _family_loader(family: str) -> PathLoader:
    loader = _families()[family]
    return _resolve(loader) if isinstance(loader, str) else loader


def predictor_info(spec: str, property: str | None = None) -> PredictorInfo:  # noqa: A002 - the property key
    """Info of a predictor spec; raises :class:`PredictorError` naming the known ones.

    A path spec loads its model once (on CPU) to read its info; ``property`` is passed to its family's ``from_path``.
    """
    parsed = read_spec(spec)
    if parsed.members:
        infos = [predictor_info(member, property) for member in parsed.members]
        try:
            canonical = composite_spec(parsed.name, parsed.members, **parsed.options)
            return _composite(parsed.name).info(canonical, infos, **parsed.options)
        except TypeError as exc:
            raise PredictorError(f"bad options for {parsed.name}: {exc}") from None
    if parsed.path is None:
        return _entry(parsed.name).info
    key = (spec, property)
    if key not in _STATE.path_infos:
        _STATE.path_infos[key] = _load(parsed, property, {}).info
    return _STATE.path_infos[key]


def _composite(name: str) -> CompositeEntry:
    entry = _resolve(COMPOSITES[name])
    if not isinstance(entry, CompositeEntry):
        raise PredictorError(f"{COMPOSITES[name]} is not a CompositeEntry")
    return entry


def _load(parsed: PredictorSpec, property: str | None, options: dict[str, object]) -> Predictor:  # noqa: A002
    merged = {**parsed.options, **options}
    if parsed.members:
        members = [load_predictor(member, "cpu", property) for member in parsed.members]
        spec = composite_spec(parsed.name, parsed.members, **parsed.options)
        try:
            return _composite(parsed.name).factory(spec, members, **merged)
        except TypeError as exc:
            raise PredictorError(f"bad options for {parsed.name}: {exc}") from exc
    try:
        if parsed.path is not None:
            return _family_loader(parsed.name)(parsed.path, property, **merged)
        return _entry(parsed.name).factory(**merged)
    except TypeError as exc:
        raise PredictorError(f"bad options for predictor {parsed.name!r}: {exc}") from exc


def check_options(spec: str) -> None:
    """PredictorError when a named predictor's options are not keywords of its factory, or a value is not one of the
    choices its ``Literal`` annotation allows, without loading weights (so that a run refuses them before it writes
    anything). Members of composites are checked likewise; path specs are checked by loading (:func:`predictor_info`).
    """
    parsed = read_spec(spec)
    for member in parsed.members:
        check_options(member)
    if parsed.members or parsed.path is not None or not parsed.options:
        return
    factory = _entry(parsed.name).factory
    try:
        bound = inspect.signature(factory).bind(**parsed.options)
    except TypeError as exc:
        raise PredictorError(f"bad options for predictor {parsed.name!r}: {exc}") from None
    for key, choices in _literal_choices(factory).items():
        if key in bound.arguments and bound.arguments[key] not in choices:
            raise PredictorError(
                f"predictor {parsed.name}: option {key} must be one of {', '.join(map(str, choices))}, "
                f"got {bound.arguments[key]!r}"
            )


def _literal_choices(factory: Callable[..., Predictor]) -> dict[str, tuple[object, ...]]:
    """Keyword → allowed values, for the ``Literal``-annotated parameters of a factory (a function, class or partial)."""
    target: Any = factory.func if isinstance(factory, partial) else factory
    target = target.__init__ if isinstance(target, type) else target
    try:
        hints = get_type_hints(target)
    except (NameError, TypeError):  # annotations that do not resolve at run time: no value check
        return {}
    return {key: get_args(hint) for key, hint in hints.items() if get_origin(hint) is Literal}


def load_predictor(
    spec: str, device: torch.device | str = "cpu", property: str | None = None, **options: object  # noqa: A002
) -> Predictor:
    """Instantiate a predictor spec in evaluation mode on ``device`` (``options`` add to the spec's own)."""
    parsed = read_spec(spec)
    if parsed.path is None and not parsed.members:
        _entry(parsed.name)
    predictor = _load(parsed, property, dict(options)).to(device)
    if isinstance(predictor, torch.nn.Module):
        predictor.eval()
        for parameter in predictor.parameters():
            parameter.requires_grad_(False)
    return predictor
