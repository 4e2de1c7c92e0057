"""Where each candidate of a searched mini-batch came from: what the evaluation needs of a search."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Provenance:
    """Bookkeeping of a search over one :class:`~smoacs.design.space.DesignSpace`, as evaluation reads it.

    Attributes:
        history: property name (and ``loss``) → ``[steps, B]`` float32 values per step (written to result.npz as
            ``history_<key>``).
        quarantine: crystal index → reason it was frozen (a quarantined candidate is never a success).
        template_index: ``[B]`` index of the template each final candidate's geometry descends from.
        copied_from: ``[B]`` donor crystal index of the last copy-and-mutate, or −1.
    """

    history: dict[str, np.ndarray]
    quarantine: dict[int, str]
    template_index: np.ndarray
    copied_from: np.ndarray

    @classmethod
    def untouched(cls, n_crystals: int) -> Provenance:
        """Provenance of a space that was not searched (every candidate from its own template, no history)."""
        return cls({}, {}, np.arange(n_crystals), np.full(n_crystals, -1))
