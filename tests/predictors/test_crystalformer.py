"""Parity of the Crystalformer port with the official implementation (fixture in tests/files/crystalformer/).

The fixture holds an official-format checkpoint and the official outputs and *exact* input gradients (``grad_exact``,
validated by finite differences) for 9 one-hot crystals and 2 soft compositions; tolerances are the fixture's.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch

from smoacs.crystal.batch import CrystalBatch
from smoacs.errors import PredictorError
from smoacs.predictors.crystalformer import CrystalformerPredictor, from_path, read_checkpoint, write_checkpoint

FIXTURE = Path(__file__).parents[1] / "files" / "crystalformer"
TARGET_STD, TARGET_MEAN = 1.5, 0.75


@pytest.fixture(scope="module")
def reference() -> dict:
    with gzip.open(FIXTURE / "reference.json.gz", "rt") as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def predictor() -> CrystalformerPredictor:
    return from_path(str(FIXTURE / "model.ckpt")).double()


def _batch(entry: dict, dtype: torch.dtype = torch.float64) -> tuple[CrystalBatch, torch.Tensor | None]:
    """The entry as a CrystalBatch with grad-enabled leaves (soft entries: species = softmax(logits))."""
    lattice = torch.tensor(entry["lattice_rows"], dtype=dtype)[None].requires_grad_(True)
    frac = torch.tensor(entry["frac_coords"], dtype=dtype).requires_grad_(True)
    logits = None
    if entry["kind"] == "soft_composition":
        logits = torch.tensor(entry["soft_logits"], dtype=dtype).requires_grad_(True)
        probs = torch.softmax(logits / entry["soft_temperature"], dim=1)
    else:
        probs = torch.tensor(entry["x"], dtype=dtype).requires_grad_(True)
    n = len(entry["frac_coords"])
    batch = CrystalBatch(lattice, frac, probs, torch.zeros(n, dtype=torch.long), torch.tensor([n]))
    return batch, logits


def _raw(entry: dict) -> float:
    value = entry["output_raw"]
    while isinstance(value, list):
        value = value[0]
    return value


def test_checkpoint_layout_and_normaliser() -> None:
    loaded = read_checkpoint(FIXTURE / "model.ckpt")
    assert loaded.config.num_layers == 4 and loaded.config.model_dim == 128 and loaded.config.head_num == 8
    assert loaded.target_std.item() == TARGET_STD and loaded.target_mean.item() == TARGET_MEAN
    scale = loaded.net.encoder.layers[0].self_attn.gauss_scale
    assert scale[0].item() == pytest.approx(23.5112, rel=1e-5)


def test_outputs_and_exact_gradients_match_fixture(reference: dict, predictor: CrystalformerPredictor) -> None:
    for entry in reference["entries"]:
        batch, logits = _batch(entry)
        raw = predictor.raw(batch)[:, 0]
        assert raw.item() == pytest.approx(_raw(entry), abs=1e-11), entry["name"]
        raw.sum().backward()
        exact = entry["grad_exact"]
        pairs = [("frac_coords", batch.frac_coords), ("lattice", batch.lattice)]
        pairs.append(("soft_logits", logits) if logits is not None else ("x", batch.species_probs))
        for key, leaf in pairs:
            expected = torch.tensor(exact[key], dtype=torch.float64).reshape(leaf.shape)
            torch.testing.assert_close(leaf.grad, expected, rtol=0, atol=1e-11, msg=f"{entry['name']} {key}")
        denorm = predictor(batch.detach()).item()
        assert denorm == pytest.approx(_raw(entry) * TARGET_STD + TARGET_MEAN, abs=1e-10)


def test_official_gradient_is_not_what_we_match(reference: dict) -> None:
    """Sanity check of the fixture itself: the official geometry gradient differs from the exact one."""
    entry = next(e for e in reference["entries"] if e["name"] == "CaTiO3_distorted")
    official = torch.tensor(entry["grad_official"]["frac_coords"])
    exact = torch.tensor(entry["grad_exact"]["frac_coords"])
    assert (official - exact).abs().max() > 1e-4


def test_batched_equals_single_and_chunking(reference: dict, predictor: CrystalformerPredictor) -> None:
    entries = [e for e in reference["entries"] if e["kind"] == "one_hot" and len(e["frac_coords"]) < 20]  # fast ones
    singles = [_raw(e) for e in entries]
    from smoacs.chem.elements import N_ELEMENTS

    lattice = torch.tensor([e["lattice_rows"] for e in entries], dtype=torch.float64)
    frac = torch.cat([torch.tensor(e["frac_coords"], dtype=torch.float64) for e in entries])
    species = torch.cat([torch.tensor(e["atom_index_0based"]) for e in entries])
    sizes = torch.tensor([len(e["frac_coords"]) for e in entries])
    batch = CrystalBatch.from_species(lattice, frac, species, sizes)
    assert batch.species_probs.shape[1] == N_ELEMENTS
    torch.testing.assert_close(predictor.raw(batch)[:, 0], torch.tensor(singles, dtype=torch.float64), rtol=0, atol=1e-11)
    # Tiny chunks (and gradient checkpointing across them) change nothing, values or gradients.
    lattice.requires_grad_(True)
    full = predictor.raw(CrystalBatch.from_species(lattice, frac, species, sizes)).sum()
    (g_full,) = torch.autograd.grad(full, lattice)
    predictor.chunk = 37
    try:
        chunked = predictor.raw(CrystalBatch.from_species(lattice, frac, species, sizes)).sum()
        (g_chunk,) = torch.autograd.grad(chunked, lattice)
    finally:
        predictor.chunk = 2048
    torch.testing.assert_close(chunked, full, rtol=0, atol=1e-11)
    torch.testing.assert_close(g_chunk, g_full, rtol=0, atol=1e-11)


def test_unwrapped_coordinates_are_wrapped(reference: dict, predictor: CrystalformerPredictor) -> None:
    entry = next(e for e in reference["entries"] if e["name"] == "triclinic_random_6atom")
    batch, _ = _batch(entry)
    shifted = CrystalBatch(batch.lattice, batch.frac_coords + torch.tensor([1.0, -2.0, 3.0]), batch.species_probs,
                           batch.crystal_idx, batch.n_atoms)  # fmt: skip
    assert predictor.raw(shifted).item() == pytest.approx(_raw(entry), abs=1e-11)


def test_float32_within_fixture_tolerance(reference: dict) -> None:
    predictor = from_path(str(FIXTURE / "model.ckpt"))
    for entry in reference["entries"][:4]:
        batch, _ = _batch(entry, torch.float32)
        assert predictor.raw(batch).item() == pytest.approx(_raw(entry), rel=1e-4, abs=1e-6)


def test_round_trip_and_errors(tmp_path: Path, reference: dict, predictor: CrystalformerPredictor) -> None:
    loaded = read_checkpoint(FIXTURE / "model.ckpt")
    write_checkpoint(tmp_path / "copy.ckpt", loaded.net, loaded.target_mean, loaded.target_std)
    again = from_path(str(tmp_path / "copy.ckpt"), property="gap", unit="eV").double()
    assert again.info.property == "gap" and again.info.unit == "eV"
    batch, _ = _batch(reference["entries"][0])
    assert again(batch).item() == pytest.approx(predictor(batch).item(), abs=1e-12)
    with pytest.raises(PredictorError, match="not found"):
        from_path(str(tmp_path / "missing.ckpt"))
    with pytest.raises(PredictorError, match="no model.json"):
        from_path(str(tmp_path))
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(PredictorError, match="cannot read"):
        from_path(str(tmp_path / "junk.ckpt"))
