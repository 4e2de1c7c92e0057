"""Ensembles: several predictors of one property combined into one :class:`~smoacs.predictors.base.Predictor`.

Spec form (see :mod:`smoacs.predictors.registry`): ``ensemble[MEMBER,MEMBER,…][:value=…][:spread=…]``, each member
any predictor spec of the same property (``cgcnn-band-gap``, ``megnet-mf-band-gap:fidelity=pbe``,
``alignn:/x/model.zip``), e.g. ``ensemble[cgcnn-band-gap,megnet-band-gap]``.

* ``value`` — the ensemble's value: ``mean`` (default), ``median``, or a number q in [0, 1], the q-quantile of the
  members (linear interpolation; ``0`` is the lowest member, ``1`` the highest).
* ``spread`` — the disagreement: ``range`` (max − min, default) or ``sd`` (population standard deviation).

The ensemble returns its value from ``__call__`` / :meth:`final` like any predictor, and every per-member value and
the spread from :meth:`named_values` (keys ``<property>``, ``<property>_spread``, ``<property>_m0``, ``_m1``, …, in
member order). The optimiser and the evaluation read :meth:`named_values` (through
:func:`smoacs.predictors.base.predictor_values`), so the spread and every member land in the objectives' values,
the histories and ``result.csv``; an objective with ``agreement: all`` (the default) requires and pushes every member
(:mod:`smoacs.objectives.terms`).

Members stay independent models: each gets its neighbour graph in its own :meth:`rebuild`. The ensemble hands every
member the very batch it was given, so members on the same graph share it (and its edge lengths and bond
expansion) through the batch's per-step :class:`~smoacs.crystal.cache.FeatureCache`, as separate predictors do;
nothing here depends on how members get their graphs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from smoacs.crystal.batch import CrystalBatch
from smoacs.errors import PredictorError
from smoacs.predictors.base import CompositeEntry, Predictor, PredictorInfo

SPREADS = ("range", "sd")
VALUE_NAMES = ("mean", "median")


def member_key(prop: str, index: int) -> str:
    """Values key (and result.csv column) of member ``index`` of an ensemble of ``prop``: ``<prop>_m<index>``."""
    return f"{prop}_m{index}"


def spread_key(prop: str) -> str:
    """Values key (and result.csv column) of an ensemble's spread: ``<prop>_spread``."""
    return f"{prop}_spread"


def _check_value(value: object) -> str | float:
    if isinstance(value, str) and value in VALUE_NAMES:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= float(value) <= 1.0:
        return float(value)
    raise PredictorError(f"ensemble value must be mean, median or a quantile in [0, 1], got {value!r}")


def _check_spread(spread: object) -> str:
    if spread not in SPREADS:
        raise PredictorError(f"ensemble spread must be one of {', '.join(SPREADS)}, got {spread!r}")
    return str(spread)


def combine(stacked: Tensor, value: str | float = "mean") -> Tensor:
    """``[B]`` combined value of ``[n_members, B]`` member values (``mean``, ``median`` or a q-quantile).

    ``median`` of an even number of members is the mean of the middle two (the 0.5-quantile), so gradients reach
    both. A NaN member (a model that cannot predict that crystal) makes the value NaN.
    """
    if value == "mean":
        return stacked.mean(dim=0)
    q = 0.5 if value == "median" else float(value)
    return torch.quantile(stacked, q, dim=0)


def spread_of(stacked: Tensor, spread: str = "range") -> Tensor:
    """``[B]`` disagreement of ``[n_members, B]`` member values: max − min, or the population sd."""
    if spread == "range":
        return stacked.amax(dim=0) - stacked.amin(dim=0)
    return stacked.std(dim=0, correction=0)


def ensemble_info(spec: str, infos: Sequence[PredictorInfo], value: object = "mean", spread: object = "range") -> PredictorInfo:
    """Info of an ensemble of members with ``infos`` (no weights loaded); checks one property and unit, and the options."""
    if len(infos) < 2:
        raise PredictorError(f"an ensemble needs at least two members, got {len(infos)} in {spec!r}")
    props = {info.property for info in infos}
    if len(props) > 1:
        listed = ", ".join(f"{info.name} ({info.property})" for info in infos)
        raise PredictorError(f"ensemble members must predict one property, got {listed}")
    units = {info.unit for info in infos}
    if len(units) > 1:
        raise PredictorError(f"ensemble members must share one unit, got {', '.join(sorted(units))}")
    combined, kind = _check_value(value), _check_spread(spread)
    how = combined if isinstance(combined, str) else f"{combined:g}-quantile"
    return PredictorInfo(
        name=spec,
        property=infos[0].property,
        unit=infos[0].unit,
        training_data="; ".join(dict.fromkeys(info.training_data for info in infos)),
        source="; ".join(dict.fromkeys(info.source for info in infos)),
        description=f"ensemble of {len(infos)} models ({', '.join(info.name for info in infos)}): {how}, spread {kind}",
    )


class Ensemble(torch.nn.Module):
    """Several predictors of one property behind the Predictor protocol.

    Args:
        members: loaded predictors (at least two, one property and unit).
        info: the ensemble's info (:func:`ensemble_info`).
        value: ``mean``, ``median`` or a quantile in [0, 1].
        spread: ``range`` (max − min) or ``sd``.
    """

    def __init__(self, members: Sequence[Predictor], info: PredictorInfo, value: str | float = "mean",
                 spread: str = "range") -> None:  # fmt: skip
        super().__init__()
        self.info = info
        self.value = _check_value(value)
        self.spread = _check_spread(spread)
        self.members = list(members)
        # Modules are registered so that .to(), .eval() and parameters() reach them; others are moved in to().
        self._modules_list = torch.nn.ModuleList(m for m in self.members if isinstance(m, torch.nn.Module))

    def member_values(self, crystals: CrystalBatch, final: bool = False) -> list[Tensor]:
        """Each member's ``[B]`` value in ``info.unit`` (``final``: each member's reported value)."""
        rows = [member.final(crystals) if final else member(crystals) for member in self.members]
        return [row.to(rows[0].dtype) for row in rows]

    def stacked(self, crystals: CrystalBatch, final: bool = False) -> Tensor:
        """``[n_members, B]`` member values in ``info.unit``."""
        return torch.stack(self.member_values(crystals, final))

    def named_values(self, crystals: CrystalBatch, final: bool = False) -> dict[str, Tensor]:
        """``<property>``, ``<property>_spread`` and ``<property>_m<i>`` of every member, each ``[B]``."""
        rows = self.member_values(crystals, final)
        stacked = torch.stack(rows)
        prop = self.info.property
        out = {prop: combine(stacked, self.value), spread_key(prop): spread_of(stacked, self.spread)}
        out.update({member_key(prop, i): row for i, row in enumerate(rows)})
        return out

    def forward(self, crystals: CrystalBatch) -> Tensor:
        """``[B]`` differentiable combined value."""
        return combine(self.stacked(crystals), self.value)

    def final(self, crystals: CrystalBatch) -> Tensor:
        """``[B]`` combined value of the members' reported values."""
        return combine(self.stacked(crystals, final=True), self.value)

    def predict_with_uncertainty(self, crystals: CrystalBatch) -> tuple[Tensor, Tensor]:
        """``([B], [B])`` combined value and spread (range or sd, as configured) of the members' reported values;
        ``smoacs predict --uncertainty`` writes the spread as the ``<spec>:std`` column."""
        with torch.no_grad():
            self.rebuild(crystals)
            stacked = self.stacked(crystals, final=True)
        return combine(stacked, self.value), spread_of(stacked, self.spread)

    def rebuild(self, crystals: CrystalBatch) -> None:
        """Rebuild every member's discrete state (neighbour graphs)."""
        for member in self.members:
            member.rebuild(crystals)

    def to(self, device: torch.device | str) -> Ensemble:  # type: ignore[override]
        """Move every member to ``device``."""
        self.members = [member.to(device) for member in self.members]
        self._modules_list = torch.nn.ModuleList(m for m in self.members if isinstance(m, torch.nn.Module))
        return self


def build_ensemble(spec: str, members: Sequence[Predictor], value: object = "mean", spread: object = "range") -> Ensemble:
    """An :class:`Ensemble` of loaded ``members`` (the registry's factory for ``ensemble[…]`` specs)."""
    info = ensemble_info(spec, [member.info for member in members], value, spread)
    return Ensemble(members, info, _check_value(value), _check_spread(spread))


#: The registry's composite entry (see :data:`smoacs.predictors.registry.COMPOSITES`).
ENTRY = CompositeEntry(info=ensemble_info, factory=build_ensemble)
