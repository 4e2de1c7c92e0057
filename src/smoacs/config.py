"""A validated run configuration: everything that determines a run, serialisable to run.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from collections.abc import Mapping
from typing import Any

from smoacs.design.space import SpaceSettings
from smoacs.errors import ConfigError
from smoacs.evaluate.evaluator import EvaluationSettings
from smoacs.objectives.terms import Objective, objective_to_dict
from smoacs.optimize.loop import OptimizerSettings

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


@dataclass(frozen=True)
class RunConfig:
    """A complete run.

    Attributes:
        preset: name of the preset it came from (informational).
        target: main target value (the preset's unit), or None for presets without one.
        candidates: number of candidates (templates) optimised.
        batch_size: candidates per mini-batch (optimised together, written when finished).
        seed: seeds templates, initial logits, mutations (Python, numpy and torch are seeded from it).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        out: output directory.
        predictors: property → registered predictor name (optimised through).
        oracles: property → an independent predictor that re-checks the discrete candidates (reported only).
        objectives: objective terms (they also define the success criteria).
        templates, space, optimizer, evaluation: settings of each stage.
    """

    preset: str
    target: float | None
    out: str
    predictors: dict[str, str]
    objectives: tuple[Objective, ...]
    oracles: dict[str, str] = field(default_factory=dict)
    candidates: int = 256
    batch_size: int = 256
    seed: int = 0
    device: str = "auto"
    templates: TemplateSettings = field(default_factory=TemplateSettings)
    space: SpaceSettings = field(default_factory=SpaceSettings)
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)

    def validate(self) -> RunConfig:
        """Check cross-field consistency; raise :class:`ConfigError` naming the offending setting."""
        if self.candidates < 1:
            raise ConfigError(f"candidates must be ≥ 1, got {self.candidates}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be ≥ 1, got {self.batch_size}")
        if self.device not in DEVICES:
            raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        lo, hi = self.space.length_bounds
        if not 0 < lo < hi:
            raise ConfigError(f"length bounds (space.length_bounds) must satisfy 0 < min < max, got ({lo}, {hi})")
        r_lo, r_hi = self.templates.length_range
        if not lo <= r_lo <= r_hi <= hi:
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
        from smoacs.evaluate.relax import check_relaxer

        check_relaxer(self.evaluation.relax)
        for prop, name in self.oracles.items():
            if prop not in self.predictors:
                raise ConfigError(f"oracle {name} is for {prop!r}, which no predictor of this run provides")
            if name == self.predictors[prop]:
                raise ConfigError(f"oracle for {prop!r} must differ from the optimised predictor {name}")
        provided = set(self.predictors) | {"tolerance", "min_distance"}
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
        """A copy with top-level fields replaced."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, not tuples) for run.json: the config-file format of ``docs/CONFIG.md``."""
        data = _plain(asdict(self))
        data["objectives"] = [_plain(objective_to_dict(o)) for o in self.objectives]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        """Check and build from :meth:`to_dict`'s form (or a parsed config file); ``from_dict(c.to_dict()) == c``."""
        from smoacs.configfile import config_from_dict

        return config_from_dict(data)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
