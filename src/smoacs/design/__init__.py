"""The learnable design space: parameters, masks, soft realisation and discretisation."""

from __future__ import annotations

from smoacs.design.provenance import Provenance
from smoacs.design.space import DesignSpace, DiscreteChoices, DiscreteDesign, SoftDesign, SpaceSettings

__all__ = ["DesignSpace", "DiscreteChoices", "DiscreteDesign", "Provenance", "SoftDesign", "SpaceSettings"]
