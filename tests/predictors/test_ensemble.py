"""Ensemble predictor: value and spread against its members, gradients to every member, the registry spec form."""

from __future__ import annotations

import pytest
import torch
from pymatgen.core import Structure

from smoacs.crystal.batch import CrystalBatch
from smoacs.errors import PredictorError
from smoacs.predictors.base import PredictorInfo, predictor_values
from smoacs.predictors.ensemble import Ensemble, build_ensemble, combine, spread_of
from smoacs.predictors.registry import load_predictor, predictor_info, read_spec, spec_key, spec_members, split_specs
from conftest import ToyPredictor


class Scaled(ToyPredictor):
    """The toy predictor times ``factor`` plus ``offset`` (distinct, smooth members)."""

    def __init__(self, factor: float, offset: float) -> None:
        super().__init__()
        self.factor, self.offset = factor, offset
        self.info = PredictorInfo(f"toy-{factor}-{offset}", "band_gap", "eV", f"data {factor}", "tests")

    def __call__(self, crystals: CrystalBatch) -> torch.Tensor:
        return self.factor * super().__call__(crystals) + self.offset


def _members() -> list[Scaled]:
    return [Scaled(1.0, 0.0), Scaled(0.5, 1.0), Scaled(2.0, -3.0)]


def _batch(structures: list[Structure]) -> CrystalBatch:
    crystals = CrystalBatch.from_structures(structures, dtype=torch.float64)
    probs = torch.softmax(torch.log(crystals.species_probs + 1e-3), dim=1).requires_grad_(True)
    return CrystalBatch(crystals.lattice, crystals.frac_coords, probs, crystals.crystal_idx, crystals.n_atoms)


@pytest.mark.parametrize(("value", "spread"), [("mean", "range"), ("median", "sd"), (0.25, "range"), (1.0, "sd")])
def test_value_and_spread_match_the_members(random_structures: list[Structure], value: object, spread: str) -> None:
    members = _members()
    crystals = _batch(random_structures)
    ensemble = build_ensemble("ensemble[a,b,c]", members, value=value, spread=spread)
    stacked = torch.stack([m(crystals) for m in members])
    expected = {"mean": stacked.mean(0), "median": stacked.median(0).values}.get(value)  # type: ignore[call-overload]
    if expected is None:
        expected = torch.quantile(stacked, float(value), dim=0)  # type: ignore[arg-type]
    spread_expected = stacked.amax(0) - stacked.amin(0) if spread == "range" else stacked.std(0, correction=0)
    named = ensemble.named_values(crystals)
    torch.testing.assert_close(ensemble(crystals), expected)
    torch.testing.assert_close(named["band_gap"], expected)
    torch.testing.assert_close(named["band_gap_spread"], spread_expected)
    for i, member in enumerate(members):
        torch.testing.assert_close(named[f"band_gap_m{i}"], member(crystals))
    assert set(named) == {"band_gap", "band_gap_spread", "band_gap_m0", "band_gap_m1", "band_gap_m2"}


def test_quantiles_bracket_the_members() -> None:
    stacked = torch.tensor([[1.0, 5.0], [3.0, 2.0], [2.0, 8.0]])
    torch.testing.assert_close(combine(stacked, 0.0), torch.tensor([1.0, 2.0]))
    torch.testing.assert_close(combine(stacked, 1.0), torch.tensor([3.0, 8.0]))
    torch.testing.assert_close(combine(stacked, "median"), torch.tensor([2.0, 5.0]))
    torch.testing.assert_close(spread_of(stacked, "range"), torch.tensor([2.0, 6.0]))


def test_gradient_reaches_every_member(random_structures: list[Structure]) -> None:
    members = _members()
    crystals = _batch(random_structures)
    ensemble = build_ensemble("ensemble[a,b,c]", members)
    (grad,) = torch.autograd.grad(ensemble(crystals).sum(), crystals.species_probs)
    per_member = [torch.autograd.grad(m(crystals).sum(), crystals.species_probs)[0] for m in members]
    torch.testing.assert_close(grad, sum(per_member) / 3)  # d mean = mean of the members' gradients
    named = ensemble.named_values(crystals)
    outputs = [named[f"band_gap_m{i}"] for i in range(3)]
    for g in torch.autograd.grad(named["band_gap"].sum(), outputs):
        assert torch.all(g == 1 / 3)  # every member output receives the mean's gradient


def test_real_members_final_values(srtio3: Structure, rock_salt: Structure) -> None:
    ensemble = load_predictor("ensemble[cgcnn-band-gap,megnet-band-gap]")
    crystals = CrystalBatch.from_structures([srtio3, rock_salt])
    values = predictor_values(ensemble, crystals, final=True)
    cgcnn, megnet = load_predictor("cgcnn-band-gap"), load_predictor("megnet-band-gap")
    expected = torch.stack([cgcnn.final(crystals), megnet.final(crystals)])
    torch.testing.assert_close(values["band_gap_m0"], expected[0])
    torch.testing.assert_close(values["band_gap_m1"], expected[1])
    torch.testing.assert_close(values["band_gap"], expected.mean(0))
    torch.testing.assert_close(ensemble.final(crystals), expected.mean(0))
    torch.testing.assert_close(values["band_gap_spread"], (expected[0] - expected[1]).abs())
    value, spread = ensemble.predict_with_uncertainty(crystals)  # type: ignore[attr-defined]
    torch.testing.assert_close(value, values["band_gap"])
    torch.testing.assert_close(spread, values["band_gap_spread"])
    assert isinstance(ensemble, Ensemble) and ensemble.info.property == "band_gap" and ensemble.info.unit == "eV"
    assert not any(p.requires_grad for p in ensemble.parameters())  # loaded frozen, members included


def test_spec_form_and_info() -> None:
    spec = " ensemble[cgcnn-band-gap, megnet-mf-band-gap:fidelity=hse]:value=0.5:spread=sd"
    parsed = read_spec(spec)
    assert parsed.name == "ensemble" and parsed.members == ("cgcnn-band-gap", "megnet-mf-band-gap:fidelity=hse")
    assert parsed.options == {"value": 0.5, "spread": "sd"}
    info = predictor_info(spec)
    assert info.name == "ensemble[cgcnn-band-gap,megnet-mf-band-gap:fidelity=hse]:value=0.5:spread=sd"
    assert info.property == "band_gap" and "0.5-quantile" in info.description
    assert spec_members(spec) == ("cgcnn-band-gap", "megnet-mf-band-gap:fidelity=hse")
    assert spec_members("cgcnn-band-gap") == ("cgcnn-band-gap",)
    assert spec_key("megnet-mf-band-gap: fidelity=pbe") == spec_key("megnet-mf-band-gap:fidelity=pbe")
    assert split_specs("a, ensemble[b,c:x=1]:value=median,d") == ["a", "ensemble[b,c:x=1]:value=median", "d"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ensemble[cgcnn-band-gap]", "at least two members"),
        ("ensemble[cgcnn-band-gap,cgcnn-formation-energy]", "must predict one property"),
        ("ensemble[cgcnn-band-gap,megnet-band-gap", "missing its closing ']'"),
        ("ensemble[cgcnn-band-gap,ensemble[a,b]]", "cannot be nested"),
        ("ensemble[cgcnn-band-gap,]", "empty member"),
        ("ensemble[cgcnn-band-gap,nope]", "unknown predictor 'nope'"),
        ("ensemble[cgcnn-band-gap,megnet-band-gap]:value=mode", "ensemble value must be mean, median or a quantile"),
        ("ensemble[cgcnn-band-gap,megnet-band-gap]:value=1.5", "quantile in [0, 1]"),
        ("ensemble[cgcnn-band-gap,megnet-band-gap]:spread=iqr", "ensemble spread must be one of range, sd"),
        ("ensemble[cgcnn-band-gap,megnet-band-gap]:colour=red", "bad options for ensemble"),
        ("ensemble[cgcnn-band-gap,megnet-band-gap]x", "expected ':key=value' options after ']'"),
    ],
)
def test_bad_specs_raise_one_clear_error(spec: str, message: str) -> None:
    with pytest.raises(PredictorError, match=None) as info:
        predictor_info(spec)
    assert message in str(info.value)
