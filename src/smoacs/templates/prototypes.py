"""General templates from the AFLOW Library of Crystallographic Prototypes (as bundled with pymatgen).

The 288 prototype structures of ``pymatgen/analysis/prototypes/aflow_prototypes.json.gz`` are shipped converted
(``data/aflow_prototypes.json.gz``, see ``scripts/convert_template_data.py``), so the set and its order do not
depend on the installed pymatgen. Order: sorted by name = AFLOW label (``AB_hP6_154_a_b``; a label occurring twice
gets ``-2``). With ``max_atoms=10``, 188 prototypes are selected and 88 of them admit a neutral oxidation pattern
(elemental prototypes, intermetallics without a neutral assignment of super-common states etc. are skipped).
"""

from __future__ import annotations

from smoacs.templates.packaged import TemplateSet, general_templates, read_library

PROTOTYPES_FILE = "aflow_prototypes.json.gz"
#: Default size limit of prototype templates (sites per cell).
DEFAULT_MAX_ATOMS = 10


def prototype_templates(max_atoms: int | None = DEFAULT_MAX_ATOMS, limit: int | None = None) -> TemplateSet:
    """AFLOW prototype templates with at most ``max_atoms`` sites, sorted by AFLOW label, and the skipped ones."""
    return general_templates(read_library(PROTOTYPES_FILE), max_atoms=max_atoms, limit=limit)
