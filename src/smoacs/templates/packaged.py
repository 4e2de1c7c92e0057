"""Template libraries shipped as package data (``smoacs/templates/data/*.json.gz``) and the general-template builder.

Each library is a list of records sorted by name (see ``scripts/convert_template_data.py``). Records become general
templates (:func:`smoacs.templates.files.general_from_structure`: free geometry, the first neutral oxidation
patterns of the record's own species in atom order). Records that cannot be used — partially occupied sites, an
element outside H…Cf, no neutral pattern — are returned as :class:`SkippedTemplate` with the reason.
"""

from __future__ import annotations

import gzip
import importlib.resources
import json
from functools import cache
from typing import Any

from smoacs.errors import TemplateError
from smoacs.templates.base import SkippedTemplate, Template, TemplateSet
from smoacs.templates.files import MAX_COMBOS, general_from_structure

__all__ = ["SkippedTemplate", "TemplateSet", "general_templates", "read_library"]


@cache
def read_library(filename: str) -> tuple[dict[str, Any], ...]:
    """The records of a shipped library, sorted by name (cached; treat as read-only)."""
    resource = importlib.resources.files("smoacs.templates") / "data" / filename
    try:
        records = json.loads(gzip.decompress(resource.read_bytes()))
    except FileNotFoundError:
        raise TemplateError(f"template library {filename} is missing from the package data") from None
    return tuple(sorted(records, key=lambda record: record["name"]))


def general_templates(
    records: tuple[dict[str, Any], ...] | list[dict[str, Any]],
    max_atoms: int | None = None,
    limit: int | None = None,
    max_combos: int = MAX_COMBOS,
) -> TemplateSet:
    """General templates from library records, in record order.

    Args:
        records: library records (sorted by name).
        max_atoms: keep records with at most this many sites (None: all). Larger ones are left out silently
            (a selection, not a failure).
        limit: stop once this many templates are built (None: examine every record); skipped entries are those
            examined before the limit was reached.
        max_combos: oxidation patterns kept per template.
    """
    from pymatgen.core import Lattice, Structure

    out = TemplateSet()
    for record in records:
        if limit is not None and len(out.templates) >= limit:
            break
        if max_atoms is not None and len(record["species"]) > max_atoms:
            continue
        name = record["name"]
        if not record.get("ordered", True):
            out.skipped.append(SkippedTemplate(name, "partially occupied sites (disordered)"))
            continue
        try:
            structure = Structure(Lattice(record["lattice"]), record["species"], record["frac_coords"])
            out.templates.append(general_from_structure(structure, name, max_combos))
        except (TemplateError, ValueError) as exc:
            out.skipped.append(SkippedTemplate(name, str(exc)))
    return out
