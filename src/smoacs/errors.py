"""Exception hierarchy. Every error a user can cause derives from :class:`SmoacsError`.

Errors that are also a builtin kind (bad value, missing file) inherit that builtin too, so callers can catch either.
"""

from __future__ import annotations


class SmoacsError(Exception):
    """Base class of all smoacs errors."""


class ConfigError(SmoacsError, ValueError):
    """A run configuration, preset or command-line value is invalid."""


class TemplateError(SmoacsError, ValueError):
    """A template structure cannot be read or cannot be used."""


class PredictorError(SmoacsError, ValueError):
    """A predictor is unknown, cannot be loaded, or was given unusable input."""


class ChemistryError(SmoacsError, ValueError):
    """An unknown element or an impossible oxidation-state request."""
