"""General templates from the perov-5 and JARVIS-supercon data sets (shipped compact copies, see ``data/README.md``).

* ``perov5``: 7,572 five-site ABX3 cells (validation + test splits of CDVAE's perov-5), names
  ``perov5-<material_id>``. They are used as *general* templates (free geometry, patterns from their own species):
  most carry mixed anions (e.g. TiOsNOF), so the ABX3 role assignment of unit-cell templates does not apply.
* ``supercon``: 1,056 JARVIS BCS superconductors (train + val + test), names ``supercon-JVASP-<id>``;
  ``supercon-test`` is its 105-structure test split (the starting structures of the original Tc task).

Both are read in name order; with ``limit`` only as many records are examined as needed.
"""

from __future__ import annotations

from smoacs.errors import TemplateError
from smoacs.templates.packaged import TemplateSet, general_templates, read_library

DATASET_FILES = {"perov5": "perov5.json.gz", "supercon": "supercon.json.gz", "supercon-test": "supercon.json.gz"}
#: Data sets that are one split of a shipped file (records carry a ``split`` field).
DATASET_SPLITS = {"supercon-test": "test"}


def dataset_templates(name: str, max_atoms: int | None = None, limit: int | None = None) -> TemplateSet:
    """Templates of data set ``name`` (``perov5``, ``supercon`` or ``supercon-test``) in name order, and the skipped ones."""
    if name not in DATASET_FILES:
        raise TemplateError(f"unknown template data set {name!r}; available: {', '.join(DATASET_FILES)}")
    records = read_library(DATASET_FILES[name])
    if name in DATASET_SPLITS:
        records = tuple(record for record in records if record.get("split") == DATASET_SPLITS[name])
    return general_templates(records, max_atoms=max_atoms, limit=limit)
