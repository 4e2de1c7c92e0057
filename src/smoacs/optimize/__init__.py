"""The optimisation loop and its schedules."""

from __future__ import annotations

from smoacs.optimize.loop import DesignOptimizer, OptimizationResult, OptimizerSettings, StepRecord

__all__ = ["DesignOptimizer", "OptimizationResult", "OptimizerSettings", "StepRecord"]
