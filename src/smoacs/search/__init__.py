"""Search methods over a design space, by name (see :mod:`smoacs.search.base` for the protocol).

To add a method: write ``smoacs/search/<name>.py`` with a ``search(space, predictors, objectives, settings, seed,
callbacks) -> SearchResult`` function and add one line to :data:`METHODS`.
"""

from __future__ import annotations

from smoacs.errors import ConfigError
from smoacs.search import gradient
from smoacs.search.base import SearchMethod, SearchResult, SearchSettings

#: Method name → its search function.
METHODS: dict[str, SearchMethod] = {
    "gradient": gradient.search,
}


def search_method(name: str) -> SearchMethod:
    """The search function called ``name``; ConfigError listing the methods otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown search method {name!r}; available: {', '.join(sorted(METHODS))}") from None


__all__ = ["METHODS", "SearchMethod", "SearchResult", "SearchSettings", "search_method"]
