"""``ga``: a genetic algorithm from pymoo (``pymoo.algorithms.soo.nonconvex.ga.GA``) over the design space's genes.

The genome is the gene row of :mod:`smoacs.search.proposals` (pattern, lattice, one gene per site's element, site
displacements; all in [0, 1)), so pymoo's operators act on it directly: uniform crossover (``UX``) exchanges whole
sites (and lattice lengths, displacements) between two parents, polynomial mutation (``PM``) moves genes within
[0, 1) — and every genome decodes to elements the space's masks allow under its pattern, so mutation and
crossover never leave the masks. One population per mini-batch, its size the number of candidates; each round
pymoo asks for a generation of offspring (duplicates eliminated, so it may ask fewer), offspring ``j`` is scored in
candidate ``j``'s slot of the space (the batch is scored in one pass), and pymoo's survival selects the next
parents. ``budget`` generations = at most ``budget`` evaluations per candidate; each candidate keeps the best
genome scored in its slot. (A mini-batch of general templates with different site counts shares one genome
layout: a slot reads the genes of its own sites.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from smoacs.design.space import DesignSpace
from smoacs.objectives.terms import Objective
from smoacs.optimize.loop import GeometryDriver, StepRecord
from smoacs.predictors.base import Predictor
from smoacs.search.base import SearchResult
from smoacs.search.proposals import BaselineSettings, Scorer, n_genes, run_rounds

#: Polynomial-mutation spread (small: wide jumps between elements) and crossover probability.
MUTATION_ETA = 3.0
CROSSOVER_PROBABILITY = 0.9


def search(
    space: DesignSpace,
    predictors: Sequence[Predictor],
    objectives: Sequence[Objective],
    settings: BaselineSettings,
    seed: int,
    callbacks: Sequence[Callable[[StepRecord], None]] = (),
    geometry: GeometryDriver | None = None,  # noqa: ARG001 - genomes carry their own geometry
) -> SearchResult:
    """``settings.budget`` generations of a pymoo GA with population = candidates, seeded with ``seed``."""
    from pymoo.algorithms.soo.nonconvex.ga import GA
    from pymoo.core.evaluator import Evaluator
    from pymoo.core.problem import Problem
    from pymoo.core.termination import NoTermination
    from pymoo.operators.crossover.ux import UX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.sampling.rnd import FloatRandomSampling
    from pymoo.problems.static import StaticProblem

    n, width = space.n_crystals, n_genes(space)
    problem = Problem(n_var=width, n_obj=1, xl=0.0, xu=1.0 - 1e-9)
    algorithm = GA(
        pop_size=n, sampling=FloatRandomSampling(), crossover=UX(prob=CROSSOVER_PROBABILITY),
        mutation=PM(eta=MUTATION_ETA), eliminate_duplicates=True,
    )  # fmt: skip
    algorithm.setup(problem, termination=NoTermination(), seed=seed, verbose=False)
    scorer = Scorer(predictors, objectives, settings.optimizer.min_distance_cutoff)
    asked: list = []
    previous = torch.full((n, width), 0.5, dtype=torch.float64)

    def propose(step: int) -> torch.Tensor:  # noqa: ARG001
        population = algorithm.ask()
        asked[:] = [population]
        genes = previous.clone()  # slots pymoo left without an offspring re-score their last genome
        offspring = torch.as_tensor(population.get("X"), dtype=torch.float64)
        genes[: len(offspring)] = offspring
        previous.copy_(genes)
        return genes

    def tell(genes: torch.Tensor, loss: torch.Tensor) -> None:  # noqa: ARG001
        population = asked[0]
        Evaluator().eval(StaticProblem(problem, F=loss[: len(population), None].numpy()), population)
        algorithm.tell(infills=population)

    return run_rounds(space, scorer, settings, propose, tell, callbacks)
