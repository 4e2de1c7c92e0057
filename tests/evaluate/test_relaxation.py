"""The relaxation stage: batched relaxation of discrete candidates, relaxed verdict vs unrelaxed verdict."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from smoacs.design import DesignSpace, Provenance
from smoacs.evaluate.evaluator import EvaluationSettings, evaluate_design
from smoacs.evaluate.relaxation import RelaxationCheck, evaluate_with_relaxation, load_potential, relax_candidates
from smoacs.evaluate.summary import summarize
from smoacs.errors import ConfigError
from smoacs.objectives import Above, Window
from smoacs.physics.relax import RelaxSettings
from smoacs.physics.toy import LennardJonesPotential
from smoacs.templates import perovskite_templates

from conftest import ToyPredictor


def _space(n: int = 4) -> DesignSpace:
    return DesignSpace(perovskite_templates(n, seed=1, length_range=(4.5, 5.5)), seed=0)


def _evaluate(check: RelaxationCheck, space: DesignSpace):  # noqa: ANN202
    from functools import partial

    ids = [f"c{i:05d}" for i in range(space.n_crystals)]
    objectives = [Window("band_gap", 3.0, 0.1, 5.0), Above("min_distance", 0.5)]
    return evaluate_design(
        space, [ToyPredictor()], objectives, EvaluationSettings(check_neutrality=False),
        Provenance.untouched(space.n_crystals), ids, check=partial(evaluate_with_relaxation, check=check),
    )  # fmt: skip


def test_relaxed_verdict_is_the_headline() -> None:
    check = RelaxationCheck(LennardJonesPotential(2.4, 0.05), RelaxSettings(fmax=0.05, max_steps=400))
    evaluation = _evaluate(check, _space())
    assert evaluation.relaxed_structures is evaluation.structures and evaluation.design_structures is not None
    for row, relaxed, design in zip(evaluation.rows, evaluation.structures, evaluation.design_structures, strict=True):
        assert list(row)[list(row).index("success") + 1] == "unrelaxed_success"
        assert row["relax_status"] == "converged" and row["converged_ok"]
        assert row["volume_change"] == pytest.approx(relaxed.volume / design.volume - 1, abs=1e-9)
        assert row["band_gap"] != row["unrelaxed_band_gap"]  # re-predicted on the relaxed cell
    assert "converged_ok" in evaluation.criteria
    summary = summarize(evaluation.rows, evaluation.criteria)
    assert summary["unrelaxed_success_rate"] == np.mean([r["unrelaxed_success"] for r in evaluation.rows])


def test_check_mode_keeps_the_plain_verdict() -> None:
    check = RelaxationCheck(LennardJonesPotential(2.4, 0.05), RelaxSettings(max_steps=400), verdict=False)
    evaluation = _evaluate(check, _space())
    assert evaluation.design_structures is evaluation.structures
    row = evaluation.rows[0]
    assert "relaxed_success" in row and "relaxed_band_gap" in row and "relax_status" in row
    assert "converged_ok" not in evaluation.criteria


def test_a_step_limit_is_not_a_success() -> None:
    check = RelaxationCheck(LennardJonesPotential(2.4, 0.05), RelaxSettings(max_steps=1))
    evaluation = _evaluate(check, _space())
    assert all(row["relax_status"] == "step_limit" and not row["success"] for row in evaluation.rows)


def test_a_potential_that_raises_fails_its_rows_not_the_run() -> None:
    class Broken(LennardJonesPotential):
        def compute(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            raise RuntimeError("boom")

    space = _space()
    candidates_check = RelaxationCheck(Broken(), RelaxSettings(max_steps=5), batch_size=3)
    evaluation = _evaluate(candidates_check, space)
    assert all(row["relax_status"] == "failed" and "boom" in row["relax_reason"] for row in evaluation.rows)
    assert not any(row["success"] for row in evaluation.rows)


def test_chunks_give_the_same_result_as_one_batch() -> None:
    from smoacs.evaluate.evaluator import Candidates  # noqa: F401 - the type the stage returns

    space = _space(5)
    design = space.discretize()
    from smoacs.evaluate.candidates import Candidates as C

    cands = C(design.crystals, design.site_radius, design.ox_states.numpy(), space.frac0.double().numpy(),
              space.coord_bound.double().numpy(), space.site_roles.numpy(), [str(i) for i in range(5)], [""] * 5, [""] * 5)  # fmt: skip
    potential = LennardJonesPotential(2.4, 0.05)
    whole, _ = relax_candidates(cands, RelaxationCheck(potential, RelaxSettings(max_steps=200), batch_size=5))
    parts, _ = relax_candidates(cands, RelaxationCheck(potential, RelaxSettings(max_steps=200), batch_size=2))
    assert torch.allclose(whole.crystals.lattice, parts.crystals.lattice, atol=1e-6)


def test_unknown_potential_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown potential"):
        load_potential("lj")
