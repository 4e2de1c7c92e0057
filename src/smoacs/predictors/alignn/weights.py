"""Reading user-supplied ALIGNN checkpoints: a zip file or a directory in the layouts alignn publishes.

A model is a ``config.json`` (alignn's ``TrainingConfig`` dump; ``config["model"]`` describes the network) and a
checkpoint ``best_model.pt`` or ``checkpoint_*.pt`` holding the state dict, plain or wrapped as ``{"model": ...}``
(ignite checkpoints). Members may sit in one sub-folder of the zip (the figshare zips do). When several checkpoints
are present, ``best_model.pt`` wins, then the ``checkpoint_<n>.pt`` with the largest n.

The family is read from ``config["model"]["name"]``:

* ``"alignn"``: legacy ALIGNN (BatchNorm), graphs as ``alignn.graphs.Graph.atom_dgl_multigraph`` (k-nearest);
* ``"alignn_atomwise_pure"``: the pure-PyTorch ALIGNN-2 model (LayerNorm), graphs as ``build_pure_torch_graph``.

Every failure is a one-line :class:`~smoacs.errors.PredictorError`: no config or checkpoint in the zip, unknown
model name or config keys, a configuration this port does not implement, missing or unexpected state-dict keys, or
tensor shapes that contradict the configuration.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from smoacs.errors import PredictorError
from smoacs.predictors.alignn.graphs import GraphKind
from smoacs.predictors.alignn.network import ALIGNNHyper, ALIGNNNet

LEGACY_NAME = "alignn"
PURE_NAME = "alignn_atomwise_pure"

#: ``ALIGNNConfig`` keys of alignn 2021–2026 (legacy ``alignn.models.alignn``).
LEGACY_KEYS = frozenset(
    {
        "name", "alignn_layers", "gcn_layers", "atom_input_features", "edge_input_features",
        "triplet_input_features", "embedding_features", "hidden_features", "output_features", "link",
        "zero_inflated", "classification", "num_classes", "extra_features",
    }
)  # fmt: skip
#: ``ALIGNNAtomWisePureConfig`` keys of alignn 2026.8.11.
PURE_KEYS = frozenset(
    {
        "name", "alignn_layers", "gcn_layers", "atom_input_features", "edge_input_features",
        "triplet_input_features", "embedding_features", "hidden_features", "output_features", "grad_multiplier",
        "calculate_gradient", "atomwise_output_features", "graphwise_weight", "gradwise_weight",
        "stresswise_weight", "atomwise_weight", "link", "zero_inflated", "classification", "force_mult_natoms",
        "energy_mult_natoms", "include_pos_deriv", "use_cutoff_function", "inner_cutoff", "three_body_cutoff",
        "stress_multiplier", "add_reverse_forces", "lg_on_fly", "batch_stress", "multiply_cutoff", "use_penalty",
        "extra_features", "exponent", "penalty_factor", "penalty_threshold", "use_zbl", "zbl_cutoff",
        "additional_output_features", "additional_output_weight", "conv_type", "num_heads",
    }
)  # fmt: skip
#: Settings this port implements only at one value (key → required value); others raise a clear error.
_LEGACY_FIXED: dict[str, object] = {"classification": False, "extra_features": 0, "zero_inflated": False}
_PURE_FIXED: dict[str, object] = {
    "classification": False, "extra_features": 0, "zero_inflated": False, "use_cutoff_function": False,
    "conv_type": "alignn",
}  # fmt: skip
_PURE_DEFAULTS = {"alignn_layers": 2, "gcn_layers": 2, "atom_input_features": 1, "hidden_features": 64}
_CHECKPOINT = re.compile(r"(^|/)(best_model\.pt|checkpoint_(\d+)\.pt)$")


@dataclass(frozen=True)
class ALIGNNModelFiles:
    """The two files of a model, read into memory.

    Attributes:
        config: the parsed ``config.json``.
        state: the checkpoint bytes.
        config_name: member or file name of the config (for messages).
        checkpoint_name: member or file name of the checkpoint.
    """

    config: dict[str, Any]
    state: bytes
    config_name: str
    checkpoint_name: str


@dataclass(frozen=True)
class ALIGNNSettings:
    """Graph settings of a checkpoint (from the top level of ``config.json``).

    Attributes:
        kind: ``"legacy"`` or ``"pure"`` graph convention.
        cutoff: neighbour radius, Å (8).
        max_neighbors: k of the k-NN graph (12).
        atom_features: atom feature table name; only ``"cgcnn"`` is supported.
        target: the training target named in the config, if any (e.g. ``"optb88vdw_bandgap"``).
        dataset: the training data set named in the config, if any (e.g. ``"dft_3d"``).
    """

    kind: GraphKind
    cutoff: float
    max_neighbors: int
    atom_features: str
    target: str
    dataset: str


def _checkpoint_rank(name: str) -> tuple[int, int]:
    match = _CHECKPOINT.search(name)
    assert match is not None
    return (1, 0) if match.group(2) == "best_model.pt" else (0, int(match.group(3)))


def _pick(names: list[str], where: str) -> tuple[str, str]:
    configs = [n for n in names if n.rsplit("/", 1)[-1] == "config.json"]
    checkpoints = [n for n in names if _CHECKPOINT.search(n)]
    if not configs or not checkpoints:
        wanted = (("config.json", configs), ("best_model.pt or checkpoint_*.pt", checkpoints))
        missing = " and ".join(name for name, found in wanted if not found)
        raise PredictorError(f"{where} is not an ALIGNN model: no {missing} in it")
    if len(configs) > 1:
        raise PredictorError(f"{where} holds several config.json files ({', '.join(sorted(configs))}); give one model")
    return configs[0], max(checkpoints, key=_checkpoint_rank)


def read_model_files(path: str | Path) -> ALIGNNModelFiles:
    """Read ``config.json`` and the checkpoint from a zip file or a directory."""
    path = Path(path).expanduser()
    if path.is_dir():
        names = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
        config_name, checkpoint_name = _pick(names, f"directory {path}")
        config_text, state = (path / config_name).read_text(), (path / checkpoint_name).read_bytes()
    elif path.is_file():
        if not zipfile.is_zipfile(path):
            raise PredictorError(f"{path} is neither a zip file nor a directory holding an ALIGNN model")
        with zipfile.ZipFile(path) as archive:
            names = [info.filename for info in archive.infolist() if not info.is_dir()]
            config_name, checkpoint_name = _pick(names, f"zip {path}")
            config_text, state = archive.read(config_name).decode(), archive.read(checkpoint_name)
    else:
        raise PredictorError(f"ALIGNN model not found: {path}")
    try:
        config = json.loads(config_text)
    except json.JSONDecodeError as exc:
        raise PredictorError(f"{config_name} in {path} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise PredictorError(f"{config_name} in {path} has no 'model' section (an alignn TrainingConfig is expected)")
    return ALIGNNModelFiles(config, state, config_name, checkpoint_name)


def _hyper(
    model: dict[str, Any], allowed: frozenset[str], fixed: dict[str, object], defaults: dict[str, Any]
) -> ALIGNNHyper:
    unknown = sorted(set(model) - allowed)
    if unknown:
        raise PredictorError(f"unknown ALIGNN config keys for model {model['name']!r}: {', '.join(unknown)}")
    for key, value in fixed.items():
        if key in model and model[key] != value:
            raise PredictorError(f"ALIGNN config {key}={model[key]!r} is not supported (only {value!r})")
    if model.get("link", "identity") not in ("identity", "log", "logit"):
        raise PredictorError(f"unknown ALIGNN link {model['link']!r}; expected identity, log or logit")
    values = {f.name: model.get(f.name, defaults.get(f.name, f.default)) for f in fields(ALIGNNHyper)}
    for key, value in values.items():
        if key != "link" and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise PredictorError(f"ALIGNN config {key} must be a non-negative integer, got {value!r}")
    if values["output_features"] != 1:
        raise PredictorError(f"ALIGNN output_features={values['output_features']} is not supported (scalar models only)")
    return ALIGNNHyper(**values)


def settings_of(config: dict[str, Any]) -> tuple[ALIGNNSettings, ALIGNNHyper]:
    """Graph settings and network sizes of a parsed ``config.json``."""
    model = config["model"]
    name = model.get("name")
    if name == LEGACY_NAME:
        kind: GraphKind = "legacy"
        hyper = _hyper(model, LEGACY_KEYS, _LEGACY_FIXED, {})
        strategy = config.get("neighbor_strategy", "k-nearest")
        if strategy != "k-nearest":
            raise PredictorError(f"ALIGNN neighbor_strategy {strategy!r} is not supported for legacy models (k-nearest)")
    elif name == PURE_NAME:
        kind = "pure"
        hyper = _hyper(model, PURE_KEYS, _PURE_FIXED, _PURE_DEFAULTS)
    else:
        raise PredictorError(f"unknown ALIGNN model name {name!r}; supported: {LEGACY_NAME!r} (legacy), {PURE_NAME!r}")
    atom_features = config.get("atom_features", "cgcnn")
    if atom_features != "cgcnn" or hyper.atom_input_features != 92:
        raise PredictorError(
            f"ALIGNN atom_features {atom_features!r} with {hyper.atom_input_features} inputs is not supported "
            "(only cgcnn, 92)"
        )
    settings = ALIGNNSettings(
        kind=kind,
        cutoff=float(config.get("cutoff", 8.0)),
        max_neighbors=int(config.get("max_neighbors", 12)),
        atom_features=atom_features,
        target=str(config.get("target", "")),
        dataset=str(config.get("dataset", "")),
    )
    return settings, hyper


def _state_dict(files: ALIGNNModelFiles, where: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(io.BytesIO(files.state), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is one user-facing error
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PredictorError(f"cannot read ALIGNN checkpoint {files.checkpoint_name} in {where}: {first}") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PredictorError(f"ALIGNN checkpoint {files.checkpoint_name} in {where} holds no state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}  # DataParallel / DDP prefixes


def _load_state(net: ALIGNNNet, state: dict[str, torch.Tensor], where: str) -> None:
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        norm_hint = ""
        if any("running_" in k for k in missing + unexpected):
            norm_hint = " (BatchNorm statistics vs LayerNorm: does config.json name the right model family?)"
        parts = [f"missing {len(missing)} keys (e.g. {missing[0]})" if missing else "",
                 f"unexpected {len(unexpected)} keys (e.g. {unexpected[0]})" if unexpected else ""]  # fmt: skip
        problems = ", ".join(p for p in parts if p)
        raise PredictorError(f"ALIGNN checkpoint in {where} does not match its config: {problems}{norm_hint}")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise PredictorError(
                f"ALIGNN checkpoint in {where} does not match its config: {key} has shape {tuple(state[key].shape)}, "
                f"config implies {tuple(tensor.shape)}"
            )
    net.load_state_dict(state, strict=True)


def load_alignn(path: str | Path) -> tuple[ALIGNNNet, ALIGNNSettings]:
    """Build and load the network of an ALIGNN zip or directory (float32, CPU, evaluation mode)."""
    files = read_model_files(path)
    settings, hyper = settings_of(files.config)
    net = ALIGNNNet(hyper, "batch" if settings.kind == "legacy" else "layer", species_table=settings.kind == "pure")
    state = _state_dict(files, str(path))
    if settings.kind == "pure":  # the unused species buffer is absent from older pure checkpoints
        state.setdefault("_species_table", net.state_dict()["_species_table"])
    _load_state(net, state, str(path))
    return net.float().eval(), settings
