"""Convert the published MEGNet Keras models (megnet 1.3.2 sdist, ``mvl_models/``) into smoacs PyTorch weight files.

Reads the HDF5 files with h5py only (no TensorFlow) and writes one ``torch.save`` file per model holding a float32
state dict for :class:`smoacs.predictors.megnet.network.MEGNetNet` plus the model's graph settings, read from the
``.hdf5.json`` sidecar and the Keras ``model_config`` (cutoff, Gaussian centres, Set2Set steps, final activation,
target scaler, state input).

Usage::

    # from a source tree or the sdist tarball itself
    python scripts/convert_megnet.py --source /tmp/megnet/megnet-1.3.2.tar.gz
    python scripts/convert_megnet.py --source /path/to/megnet-1.3.2/mvl_models
    # let pip fetch the sdist (PyPI access needed)
    python scripts/convert_megnet.py --download

Output goes to ``src/smoacs/predictors/weights/megnet/<model path without .hdf5>.pt`` by default.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import h5py
import numpy as np
import torch

MEGNET_VERSION = "1.3.2"
FORMAT_VERSION = 1
# Model paths relative to mvl_models/ (the models of /work/shared/fixtures/megnet/README.md §2).
MODELS = [
    "mp-2018.6.1/formation_energy.hdf5",
    "mp-2018.6.1/band_gap_regression.hdf5",
    "mp-2018.6.1/band_classification.hdf5",
    "mp-2018.6.1/log10K.hdf5",
    "mp-2018.6.1/log10G.hdf5",
    "mp-2019.4.1/formation_energy.hdf5",
    "mp-2019.4.1/efermi.hdf5",
    "mp-2019.4.1/log10K.hdf5",
    "mp-2019.4.1/log10G.hdf5",
    *[f"mf_2020/pbe_gllb_hse_exp/{i}/best_model.hdf5" for i in range(6)],
]
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "smoacs" / "predictors" / "weights" / "megnet"

# Keras Dense layer → MEGNetNet module path. dense_7…dense_18 are the pre-MLPs of blocks 2 and 3.
_DENSE = {
    1: "atom_in.layers.0", 2: "atom_in.layers.1",
    3: "bond_in.layers.0", 4: "bond_in.layers.1",
    5: "state_in.layers.0", 6: "state_in.layers.1",
    7: "blocks.1.pre_atom.layers.0", 8: "blocks.1.pre_atom.layers.1",
    9: "blocks.1.pre_bond.layers.0", 10: "blocks.1.pre_bond.layers.1",
    11: "blocks.1.pre_state.layers.0", 12: "blocks.1.pre_state.layers.1",
    13: "blocks.2.pre_atom.layers.0", 14: "blocks.2.pre_atom.layers.1",
    15: "blocks.2.pre_bond.layers.0", 16: "blocks.2.pre_bond.layers.1",
    17: "blocks.2.pre_state.layers.0", 18: "blocks.2.pre_state.layers.1",
    19: "readout.layers.0", 20: "readout.layers.1", 21: "readout.layers.2",
}  # fmt: skip
# Expected Keras wiring (layer → inbound layers); a file that differs is refused rather than converted wrongly.
_WIRING = {
    "dense_2": ["dense_1"], "dense_4": ["dense_3"], "dense_6": ["dense_5"],
    "meg_net_layer_1": ["dense_2", "dense_4", "dense_6", "input_4", "input_5", "input_6", "input_7"],
    "add_1": ["dense_2", "meg_net_layer_1"], "add_2": ["dense_4", "meg_net_layer_1"],
    "add_3": ["dense_6", "meg_net_layer_1"],
    "dense_7": ["add_1"], "dense_9": ["add_2"], "dense_11": ["add_3"],
    "dense_8": ["dense_7"], "dense_10": ["dense_9"], "dense_12": ["dense_11"],
    "meg_net_layer_2": ["dense_8", "dense_10", "dense_12", "input_4", "input_5", "input_6", "input_7"],
    "add_4": ["add_1", "meg_net_layer_2"], "add_5": ["add_2", "meg_net_layer_2"],
    "add_6": ["add_3", "meg_net_layer_2"],
    "dense_13": ["add_4"], "dense_15": ["add_5"], "dense_17": ["add_6"],
    "dense_14": ["dense_13"], "dense_16": ["dense_15"], "dense_18": ["dense_17"],
    "meg_net_layer_3": ["dense_14", "dense_16", "dense_18", "input_4", "input_5", "input_6", "input_7"],
    "add_7": ["add_4", "meg_net_layer_3"], "add_8": ["add_5", "meg_net_layer_3"],
    "add_9": ["add_6", "meg_net_layer_3"],
    "set2_set_1": ["add_7", "input_6"], "set2_set_2": ["add_8", "input_7"],
    "concatenate_1": ["set2_set_1", "set2_set_2", "add_9"],
    "dense_19": ["concatenate_1"], "dense_20": ["dense_19"], "dense_21": ["dense_20"],
}  # fmt: skip


class _Source:
    """Read access to ``mvl_models/<path>`` in a directory tree or an sdist tarball."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tar = tarfile.open(path) if path.is_file() else None
        self._root = self._find_root()

    def _find_root(self) -> str:
        if self._tar is not None:
            names = self._tar.getnames()
            hits = [n for n in names if n.endswith("mvl_models/" + MODELS[0])]
            if not hits:
                raise SystemExit(f"{self.path}: no mvl_models/{MODELS[0]} inside (the wheel lacks them; use the sdist)")
            return hits[0][: -len(MODELS[0])]
        for candidate in (self.path, self.path / "mvl_models"):
            if (candidate / MODELS[0]).is_file():
                return str(candidate) + "/"
        raise SystemExit(f"{self.path}: no {MODELS[0]} below it (give mvl_models/, the unpacked sdist or the tarball)")

    def read(self, member: str) -> bytes:
        if self._tar is not None:
            handle = self._tar.extractfile(self._root + member)
            if handle is None:
                raise FileNotFoundError(member)
            return handle.read()
        return Path(self._root + member).read_bytes()

    def exists(self, member: str) -> bool:
        try:
            self.read(member)
        except (KeyError, FileNotFoundError):
            return False
        return True

    def licence(self) -> bytes | None:
        # The sdist's LICENSE.md sits next to mvl_models/.
        parent = self._root[: -len("mvl_models/")]
        if self._tar is not None:
            try:
                handle = self._tar.extractfile(parent + "LICENSE.md")
            except KeyError:
                return None
            return handle.read() if handle is not None else None
        path = Path(parent) / "LICENSE.md"
        return path.read_bytes() if path.is_file() else None


def _layer_configs(h5: h5py.File) -> dict[str, dict]:
    config = json.loads(h5.attrs["model_config"])
    return {layer["config"]["name"]: layer for layer in config["config"]["layers"]}


def _check_wiring(layers: dict[str, dict], model: str) -> None:
    for name, expected in _WIRING.items():
        nodes = layers[name]["inbound_nodes"]
        inbound = [entry[0] for entry in nodes[0]]
        if inbound != expected:
            raise SystemExit(f"{model}: layer {name} takes {inbound}, expected {expected}; not a standard MEGNet")
    for k in range(1, 4):
        cfg = layers[f"meg_net_layer_{k}"]["config"]
        if cfg["pool_method"] != "mean" or cfg["activation"] != "softplus2":
            raise SystemExit(f"{model}: meg_net_layer_{k} has {cfg['pool_method']}/{cfg['activation']}")
        if cfg["units_e"] != [64, 64, 32] or cfg["units_v"] != [64, 64, 32] or cfg["units_u"] != [64, 64, 32]:
            raise SystemExit(f"{model}: meg_net_layer_{k} has non-standard widths")
    for k in range(1, 21):
        if layers[f"dense_{k}"]["config"]["activation"] != "softplus2":
            raise SystemExit(f"{model}: dense_{k} activation is not softplus2")


def _weights(h5: h5py.File) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}

    def visit(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset):
            out[name] = np.asarray(obj[()], dtype=np.float32)

    h5["model_weights"].visititems(visit)
    return out


def _state_dict(raw: dict[str, np.ndarray], fidelity: bool) -> dict[str, torch.Tensor]:
    """Map Keras weight paths to MEGNetNet parameter names (kernels transposed to torch's [out, in])."""
    state: dict[str, torch.Tensor] = {}

    def put(name: str, array: np.ndarray, transpose: bool = False) -> None:
        state[name] = torch.from_numpy(np.ascontiguousarray(array.T if transpose else array))

    for key, array in raw.items():
        layer = key.split("/")[0]
        leaf = key.split("/")[-1]
        if layer == "embedding_1":
            put("atom_embedding.weight", array)
        elif layer == "embedding_2":
            put("state_embedding.weight", array)
        elif match := re.fullmatch(r"dense_(\d+)", layer):
            target = _DENSE[int(match.group(1))]
            put(f"{target}.weight" if leaf == "kernel:0" else f"{target}.bias", array, transpose=leaf == "kernel:0")
        elif match := re.fullmatch(r"meg_net_layer_(\d)", layer):
            block = int(match.group(1)) - 1
            what, phi, j = re.fullmatch(r"(weight|bias)_([evu])_(\d):0", leaf).groups()
            target = f"blocks.{block}.phi_{phi}.layers.{j}"
            put(f"{target}.weight" if what == "weight" else f"{target}.bias", array, transpose=what == "weight")
        elif match := re.fullmatch(r"set2_set_(\d)", layer):
            target = "set2set_atom" if match.group(1) == "1" else "set2set_bond"
            names = {
                "x_to_m_weight:0": ("x_to_m.weight", True),
                "x_to_m_bias:0": ("x_to_m.bias", False),
                "recurrent_kernel:0": ("recurrent.weight", True),
                "recurrent_bias:0": ("recurrent.bias", False),
            }
            param, transpose = names[leaf]
            put(f"{target}.{param}", array, transpose)
        else:
            raise SystemExit(f"unexpected weight {key}")
    if fidelity != ("state_embedding.weight" in state):
        raise SystemExit("state embedding presence does not match the state input type")
    return state


def convert_model(source: _Source, model: str) -> dict:
    """Converted payload ``{"format", "config", "state_dict"}`` of one model."""
    blob = source.read(model)
    sidecar = json.loads(source.read(model + ".json"))
    with h5py.File(io.BytesIO(blob), "r") as h5:
        layers = _layer_configs(h5)
        _check_wiring(layers, model)
        keras_version = h5.attrs["keras_version"]
        keras_version = keras_version.decode() if isinstance(keras_version, bytes) else str(keras_version)
        raw = _weights(h5)
    steps = {layers[f"set2_set_{k}"]["config"]["T"] for k in (1, 2)}
    if len(steps) != 1:
        raise SystemExit(f"{model}: the two Set2Set layers have different T {steps}")
    fidelity = "embedding_2" in layers
    converter = sidecar["graph_converter"]
    centers = np.asarray(converter["bond_converter"]["centers"]["data"], dtype=np.float64)
    n_centers = len(centers)
    stop = float(centers[-1])
    if not np.array_equal(centers, np.linspace(0.0, stop, n_centers)):
        raise SystemExit(f"{model}: Gaussian centres are not a linspace")
    scaler = sidecar.get("target_scaler") or {"@class": "DummyScaler"}
    scaler_class = scaler["@class"]
    if scaler_class == "StandardScaler" and not scaler.get("is_intensive", True):
        raise SystemExit(f"{model}: extensive StandardScaler not supported")
    config = {
        "model": model,
        "megnet_version": MEGNET_VERSION,
        "keras_version": keras_version,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "cutoff": float(converter["cutoff"]),
        "gaussian_start": float(centers[0]),
        "gaussian_stop": stop,
        "n_gaussians": n_centers,
        "gaussian_width": float(converter["bond_converter"]["width"]),
        "set2set_steps": int(steps.pop()),
        "final_activation": layers["dense_21"]["config"]["activation"],
        "state": "fidelity" if fidelity else "zeros",
        "scaler_mean": float(scaler.get("mean", 0.0)) if scaler_class == "StandardScaler" else 0.0,
        "scaler_std": float(scaler.get("std", 1.0)) if scaler_class == "StandardScaler" else 1.0,
    }
    if scaler_class not in ("StandardScaler", "DummyScaler"):
        raise SystemExit(f"{model}: unsupported target scaler {scaler_class}")
    return {"format": FORMAT_VERSION, "config": config, "state_dict": _state_dict(raw, fidelity)}


def output_path(out_dir: Path, model: str) -> Path:
    """``mp-2018.6.1/formation_energy.hdf5`` → ``out/mp-2018.6.1/formation_energy.pt``;
    ``mf_2020/pbe_gllb_hse_exp/3/best_model.hdf5`` → ``out/mf_2020/pbe_gllb_hse_exp/3.pt``."""
    stem = model.removesuffix(".hdf5").removesuffix("/best_model")
    return out_dir / f"{stem}.pt"


@contextmanager
def _downloaded_sdist() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--no-build-isolation",
            "-d", tmp, f"megnet=={MEGNET_VERSION}",
        ]  # fmt: skip
        subprocess.run(command, check=True)
        yield next(Path(tmp).glob("megnet-*.tar.gz"))


def _write(source: _Source, out_dir: Path, log: IO[str]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for model in MODELS:
        payload = convert_model(source, model)
        path = output_path(out_dir, model)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(payload, path)
        cfg = payload["config"]
        print(
            f"{model} → {path.relative_to(out_dir)}  cutoff {cfg['cutoff']} T {cfg['set2set_steps']} "
            f"{cfg['final_activation']} state {cfg['state']}  {path.stat().st_size / 1024:.0f} KiB",
            file=log,
        )
    licence = source.licence()
    if licence is not None:
        (out_dir / "LICENSE-megnet.txt").write_bytes(licence)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--source", type=Path, help="mvl_models/ folder, unpacked megnet sdist, or megnet-*.tar.gz")
    group.add_argument("--download", action="store_true", help=f"pip-download the megnet=={MEGNET_VERSION} sdist")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    if args.download:
        with _downloaded_sdist() as tarball:
            _write(_Source(tarball), args.out, sys.stdout)
    else:
        _write(_Source(args.source), args.out, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
