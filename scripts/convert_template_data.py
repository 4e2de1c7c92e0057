"""Regenerate the template data shipped under ``src/smoacs/templates/data/`` (run from the repository root).

    python scripts/convert_template_data.py [--shared ../shared/data]

Outputs (gzip-compressed JSON, one record per structure, sorted by name; lattice rows in Å, fractional coordinates,
rounded to 1e-6):

* ``aflow_prototypes.json.gz`` — pymatgen's bundled AFLOW prototype structures
  (``pymatgen/analysis/prototypes/aflow_prototypes.json.gz``; pymatgen, MIT; structures from the AFLOW Library of
  Crystallographic Prototypes, Mehl et al., Comput. Mater. Sci. 136, S1 (2017)). Names are the AFLOW label; a label
  that occurs more than once gets ``-2``, ``-3`` … in the order of the example's formula then mineral name.
* ``perov5.json.gz`` — perov-5 validation and test splits (Castelli et al., Energy Environ. Sci. 5, 9034 (2012); CDVAE
  repository, MIT), names ``perov5-<material_id>``, with heats of formation (``heat_all``, ``heat_ref``, eV/atom) and
  GLLB-SC gaps (``dir_gap``, ``ind_gap``, eV).
* ``supercon.json.gz`` — JARVIS-DFT BCS superconductors, train/val/test (Choudhary & Garrity, npj Comput. Mater. 8,
  244 (2022); CDVAE repository, MIT), names ``supercon-<JARVIS id>``, with Tc (K, sign restored) and the split.

Shipping converted copies keeps run time independent of the pymatgen version and of ``../shared``.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.resources
import json
import warnings
from collections import defaultdict
from pathlib import Path

import pandas as pd
from pymatgen.core import Structure

OUT = Path(__file__).resolve().parents[1] / "src" / "smoacs" / "templates" / "data"


def _round(values) -> list:  # noqa: ANN001
    return [[round(float(x), 6) + 0.0 for x in row] for row in values]


def _record(name: str, structure: Structure, **extra: object) -> dict:
    ordered = structure.is_ordered
    species = [site.specie.symbol if ordered else site.species.formula for site in structure]
    return {
        "name": name,
        "lattice": _round(structure.lattice.matrix),
        "species": species,
        "frac_coords": _round(structure.frac_coords),
        "ordered": ordered,
        **extra,
    }


def _write(records: list[dict], filename: str) -> None:
    records = sorted(records, key=lambda r: r["name"])
    names = [r["name"] for r in records]
    assert len(set(names)) == len(names), "duplicate template names"
    text = json.dumps(records, separators=(",", ":"), ensure_ascii=True)
    # mtime=0: byte-identical output for identical input.
    (OUT / filename).write_bytes(gzip.compress(text.encode(), compresslevel=9, mtime=0))
    print(f"{filename}: {len(records)} structures, {(OUT / filename).stat().st_size / 1024:.0f} KiB")


def convert_prototypes() -> None:
    path = importlib.resources.files("pymatgen.analysis.prototypes") / "aflow_prototypes.json.gz"
    entries = json.loads(gzip.decompress(path.read_bytes()))
    by_label: dict[str, list[tuple[Structure, dict]]] = defaultdict(list)
    for entry in entries:
        structure = Structure.from_dict(entry["snl"])
        by_label[entry["tags"]["aflow"]].append((structure, entry["tags"]))
    records = []
    for label, group in by_label.items():
        group.sort(key=lambda item: (item[0].composition.reduced_formula, str(item[1].get("mineral") or "")))
        for i, (structure, tags) in enumerate(group):
            name = label if i == 0 else f"{label}-{i + 1}"
            meta = {key: tags.get(key) for key in ("aflow", "pearson", "strukturbericht", "mineral")}
            records.append(_record(name, structure, formula=structure.composition.reduced_formula, **meta))
    _write(records, "aflow_prototypes.json.gz")


def _structures(csv: Path) -> pd.DataFrame:
    frame = pd.read_csv(csv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "fractional coordinates rounded to ideal values"
        frame["structure"] = [Structure.from_str(cif, fmt="cif") for cif in frame["cif"]]
    return frame


def convert_perov5(shared: Path) -> None:
    records = []
    for split in ("val", "test"):
        frame = _structures(shared / f"perov5_{split}.csv.gz")
        for row in frame.itertuples():
            props = {"heat_all": row.heat_all, "heat_ref": row.heat_ref, "dir_gap": row.dir_gap, "ind_gap": row.ind_gap}
            props = {k: round(float(v), 4) for k, v in props.items()}
            records.append(_record(f"perov5-{int(row.material_id):06d}", row.structure, split=split, **props))
    _write(records, "perov5.json.gz")


def convert_supercon(shared: Path) -> None:
    records = []
    for split in ("train", "val", "test"):
        frame = _structures(shared / f"supercon_{split}.csv.gz")
        for row in frame.itertuples():
            tc = round(-float(row.prop), 4) + 0.0  # the CSV stores −Tc
            records.append(_record(f"supercon-{row.material_id}", row.structure, split=split, tc=tc))
    _write(records, "supercon.json.gz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    convert_prototypes()
    convert_perov5(args.shared)
    convert_supercon(args.shared)


if __name__ == "__main__":
    main()
