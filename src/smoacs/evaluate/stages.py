"""The evaluation stages a run applies after the built-in checks — the one list ``smoacs run`` and ``smoacs evaluate``
share.

To add a stage (e.g. a batched relaxation, a DFT reference): write ``smoacs/evaluate/<name>.py`` with a function
``stage(candidates: Candidates, context: StageContext) -> StageOutput`` (see :mod:`smoacs.evaluate.candidates`), and
return it from :func:`configured_stages` when the run's settings ask for it (add that setting to
``EvaluationSettings``). Nothing else changes: its columns land in result.csv / evaluation.csv and its criteria in
``success`` and the summary.
"""

from __future__ import annotations

from smoacs.evaluate.candidates import EvaluationStage
from smoacs.evaluate.evaluator import EvaluationSettings


def configured_stages(settings: EvaluationSettings) -> list[EvaluationStage]:  # noqa: ARG001 - none configurable yet
    """The extra stages ``settings`` turn on, in order (none so far: every built-in check runs in the evaluator)."""
    return []
