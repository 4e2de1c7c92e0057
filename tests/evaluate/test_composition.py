"""Designs as host + substituents, and the sublattice-limits check on discrete cells (composition_ok)."""

from __future__ import annotations

import numpy as np
import torch

from conftest import ToyPredictor
from smoacs.chem.elements import element_index
from smoacs.design import DesignSpace, SpaceSettings
from smoacs.design.provenance import Provenance
from smoacs.design.sublattices import SublatticeLimits
from smoacs.evaluate import EvaluationSettings, evaluate_design
from smoacs.evaluate.composition import composition_check, describe_designs, group_compositions, group_labels
from smoacs.evaluate.summary import summarize
from smoacs.io.report import report_markdown
from smoacs.objectives import Window
from smoacs.templates import perovskite_templates

#: A 2×2×2 CsPbI3 cell in template site order (A, B, X, X, X per unit cell) with Ge on 2 of 8 B and Br on 6 of 24 X.
CELL = [s for i in range(8) for s in ("Cs", "Ge" if i in (1, 5) else "Pb", "Br" if i < 6 else "I", "I", "I")]
GROUPS = ["A", "B", "X", "X", "X"] * 8


def test_describe_a_doped_mixed_halide() -> None:
    hosts, designs, compositions = describe_designs([CELL], [GROUPS])
    assert hosts == ["CsPbI3"]
    assert designs == ["CsPbI3 : Ge 0.25 on B; Br 0.25 on X"]
    groups = {g.name: g for g in compositions[0]}
    assert groups["B"].host == "Pb" and groups["B"].substituents == (("Ge", 0.25),)
    assert groups["A"].substituents == () and groups["X"].n_sites == 24


def test_host_ties_go_to_the_lighter_element_and_plain_cells_are_the_host() -> None:
    group = group_compositions(["Pb", "Ge"], ["B", "B"])[0]
    assert (group.host, group.substituents) == ("Ge", (("Pb", 0.5),))
    assert describe_designs([["Sr", "Ti", "O", "O", "O"]], [["A", "B", "X", "X", "X"]])[1] == ["SrTiO3"]
    assert describe_designs([["Zn", "S", "Se", "S"]], [["", "", "", ""]])[:2] == (["ZnS2Se"], ["ZnS2Se"])  # no groups
    tl_mg = ["Tl", "Mg", "Cl", "Cl", "Cl"] * 2
    assert describe_designs([tl_mg], [["A", "B", "X", "X", "X"] * 2])[0] == ["TlMgCl3"]  # A, B, X order


def test_composition_check_gives_reasons() -> None:
    too_many = [*CELL]
    too_many[11] = "Sn"  # a third B element (cell 2's B site)
    _, _, compositions = describe_designs([CELL, too_many], [GROUPS, GROUPS])
    limits = {"A": SublatticeLimits(1), "B": SublatticeLimits(2, fraction=(0.1, 0.2)), "X": SublatticeLimits(allowed=("I", "Cl"))}
    ok, reasons = composition_check(compositions, limits)
    assert not ok.any()
    assert reasons[0] == "B: minority 0.25 outside [0.10, 0.20]; X: Br not allowed (I, Cl)"
    assert reasons[1].startswith("B: 3 elements (Pb, Ge, Sn) > max 2; B: minority 0.38 outside")
    ok, reasons = composition_check(compositions[:1], {"B": SublatticeLimits(2, fraction=(0.2, 0.3))})
    assert ok.tolist() == [True] and reasons == [""]


def test_group_labels_from_roles() -> None:
    assert group_labels(np.array([0, 1, 2, -1])).tolist() == ["A", "B", "X", ""]


def test_evaluate_design_adds_composition_ok_and_designs() -> None:
    limits = {"A": SublatticeLimits(1), "B": SublatticeLimits(2, fraction=(0.2, 0.3)), "X": SublatticeLimits(2)}
    space = DesignSpace(perovskite_templates(1, seed=0, supercell=2, length_range=(4.0, 4.2)),
                        SpaceSettings(sublattices=limits), seed=0)  # fmt: skip
    symbols = [s for s in CELL]
    species = torch.tensor([element_index(s) for s in symbols])
    space.set_composition(torch.tensor([0]), species)
    evaluation = evaluate_design(space, [ToyPredictor()], [Window("band_gap", 0.0, 0.01, 100.0)], EvaluationSettings(),
                                 Provenance.untouched(1), ["c0"])  # fmt: skip
    row = evaluation.rows[0]
    assert "composition_ok" in evaluation.criteria and row["composition_ok"] and row["composition_reason"] == ""
    assert row["host"] == "CsPbI3" and row["design"] == "CsPbI3 : Ge 0.25 on B; Br 0.25 on X"
    assert row["neutral_ok"] and row["success"]
    assert evaluation.arrays["site_groups"].tolist() == GROUPS
    summary = summarize(evaluation.rows, evaluation.criteria)
    assert summary["composition_rate"] == 1.0 and summary["distinct_success_hosts"] == 1
    text = report_markdown(evaluation.rows, summary, [Window("band_gap", 0.0, 0.01, 100.0)], {"predictors": {}})
    assert "| CsPbI3 | 1 | c0: CsPbI3 : Ge 0.25 on B; Br 0.25 on X |" in text
    assert "1 distinct host compositions" in text


def test_evaluate_design_without_limits_has_no_composition_criterion() -> None:
    space = DesignSpace(perovskite_templates(2, seed=0), seed=0)
    evaluation = evaluate_design(space, [ToyPredictor()], [Window("band_gap", 0.0)], EvaluationSettings(),
                                 Provenance.untouched(2), ["a", "b"])  # fmt: skip
    assert "composition_ok" not in evaluation.criteria
    assert "composition_reason" not in evaluation.rows[0]
    for row in evaluation.rows:  # a unit cell can only mix its three X sites
        host, _, rest = row["design"].partition(" : ")
        assert host == row["host"] and (rest == "" or rest.endswith(" on X"))
