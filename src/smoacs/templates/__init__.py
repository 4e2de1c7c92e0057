"""Template sources: generated ABX3 perovskites (and later supercells, files, datasets, prototypes)."""

from __future__ import annotations

from smoacs.templates.base import NO_ROLE, SITE_ROLES, Template
from smoacs.templates.perovskite import PEROVSKITE_COMBOS, perovskite_templates

__all__ = ["NO_ROLE", "PEROVSKITE_COMBOS", "SITE_ROLES", "Template", "perovskite_templates"]
