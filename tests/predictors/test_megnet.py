"""MEGNet port: parity with the original Keras models, registry, gradients, smooth cutoff."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest
import torch

from smoacs.crystal.batch import CrystalBatch
from smoacs.crystal.neighbors import build_neighbor_list
from smoacs.errors import PredictorError
from smoacs.predictors import available_predictors, load_predictor
from smoacs.predictors.megnet import FIDELITIES, MODEL_KEYS, MEGNetEnsemble, cutoff_weight
from smoacs.predictors.megnet.network import hard_sigmoid, softplus2

REFERENCE = Path(__file__).parents[1] / "files" / "megnet_reference.json.gz"
ATOL = 1e-4
MEGNET_NAMES = [
    "megnet-band-gap",
    "megnet-bulk-modulus",
    "megnet-efermi",
    "megnet-formation-energy",
    "megnet-formation-energy-2018",
    "megnet-mf-band-gap",
    "megnet-shear-modulus",
]


@pytest.fixture(scope="module")
def reference() -> list[dict]:
    """The 20 reference structures of the Keras fixture (/work/shared/fixtures/megnet/reference.json)."""
    with gzip.open(REFERENCE, "rt") as handle:
        return json.load(handle)["structures"]


def _batch(records: list[dict], dtype: torch.dtype = torch.float32) -> CrystalBatch:
    parsed = [record["structure_as_parsed"] for record in records]
    lattice = torch.tensor([p["lattice_matrix"] for p in parsed], dtype=dtype)
    frac = torch.tensor([f for p in parsed for f in p["frac_coords"]], dtype=dtype)
    species = torch.tensor([z - 1 for p in parsed for z in p["atomic_numbers"]])
    n_atoms = torch.tensor([len(p["atomic_numbers"]) for p in parsed])
    return CrystalBatch.from_species(lattice, frac, species, n_atoms)


@pytest.fixture(scope="module")
def batch(reference: list[dict]) -> CrystalBatch:
    """All 20 reference structures in one float32 batch."""
    return _batch(reference)


def _ref(reference: list[dict], key: str) -> torch.Tensor:
    return torch.tensor([record["predictions"][key] for record in reference], dtype=torch.float64)


# ---------------------------------------------------------------------------------------------------------- parity


def test_elementwise_functions() -> None:
    x = torch.tensor([-30.0, -1.0, 0.0, 2.5, 40.0], dtype=torch.float64)
    assert torch.allclose(softplus2(x), torch.log(0.5 * torch.exp(-x.abs()) + 0.5) + x.clamp_min(0))
    assert softplus2(torch.zeros(1)).item() == 0.0
    assert torch.equal(hard_sigmoid(x), torch.tensor([0.0, 0.3, 0.5, 1.0, 1.0], dtype=torch.float64))


@pytest.mark.parametrize("cutoff", [4.0, 5.0])
def test_neighbor_counts_match_reference(reference: list[dict], batch: CrystalBatch, cutoff: float) -> None:
    graph = build_neighbor_list(batch.lattice, batch.frac_coords, batch.crystal_idx, batch.n_atoms, cutoff)
    per_atom = torch.bincount(graph.center, minlength=batch.frac_coords.shape[0])
    expected = [n for record in reference for n in record["graph"][f"cutoff_{cutoff}"]["bonds_per_atom"]]
    assert per_atom.tolist() == expected
    distance = (
        (batch.frac_coords[graph.neighbor] + graph.image.float() - batch.frac_coords[graph.center])[:, None, :]
        @ batch.lattice[batch.crystal_idx[graph.center]]
    ).norm(dim=-1)[:, 0]
    sums = torch.zeros(batch.n_crystals, dtype=torch.float64).index_add(
        0, batch.crystal_idx[graph.center], distance.double()
    )
    expected_sums = torch.tensor([record["graph"][f"cutoff_{cutoff}"]["sum_distance"] for record in reference])
    assert torch.allclose(sums, expected_sums.double(), rtol=1e-5)


@pytest.mark.parametrize("key", [k for k in MODEL_KEYS if not k.startswith("mf_2020")])
def test_parity_mp_models(reference: list[dict], batch: CrystalBatch, key: str) -> None:
    model = MEGNetEnsemble([key])
    out = model.exact_outputs(batch)[0].double()
    expected = _ref(reference, f"{key}.hdf5")
    assert (out - expected).abs().max().item() < ATOL


@pytest.mark.parametrize("member", range(6))
def test_parity_multi_fidelity_models(reference: list[dict], batch: CrystalBatch, member: int) -> None:
    key = f"mf_2020/pbe_gllb_hse_exp/{member}"
    model = MEGNetEnsemble([key])
    for fidelity in range(4):
        model.fidelity = fidelity
        out = model.exact_outputs(batch)[0].double()
        expected = _ref(reference, f"{key}/best_model.hdf5#state={fidelity}")
        assert (out - expected).abs().max().item() < ATOL, f"fidelity {fidelity}"


def test_supercell_invariance(reference: list[dict]) -> None:
    record = next(r for r in reference if r["name"].startswith("SrTiO3"))
    unit = _batch([record])
    parsed = record["structure_as_parsed"]
    frac = torch.tensor(parsed["frac_coords"])
    half = torch.tensor([0.5, 1.0, 1.0])
    double = torch.cat([frac * half, (frac + torch.tensor([1.0, 0.0, 0.0])) * half])
    lattice = torch.tensor(parsed["lattice_matrix"]) * torch.tensor([[2.0], [1.0], [1.0]])
    species = torch.tensor([z - 1 for z in parsed["atomic_numbers"]] * 2)
    supercell = CrystalBatch.from_species(lattice[None], double, species, torch.tensor([10]))
    model = MEGNetEnsemble(["mp-2019.4.1/efermi"])
    assert torch.allclose(model.exact_outputs(unit), model.exact_outputs(supercell), atol=ATOL)


# -------------------------------------------------------------------------------------------------------- registry


def test_registered_names() -> None:
    names = {info.name for info in available_predictors()}
    assert set(MEGNET_NAMES) <= names
    assert {info.name: info.unit for info in available_predictors() if info.name in MEGNET_NAMES} == {
        "megnet-band-gap": "eV",
        "megnet-bulk-modulus": "GPa",
        "megnet-efermi": "eV",
        "megnet-formation-energy": "eV/atom",
        "megnet-formation-energy-2018": "eV/atom",
        "megnet-mf-band-gap": "eV",
        "megnet-shear-modulus": "GPa",
    }


def test_registered_predictors_match_reference(reference: list[dict], batch: CrystalBatch) -> None:
    expected = {
        "megnet-formation-energy": _ref(reference, "mp-2019.4.1/formation_energy.hdf5"),
        "megnet-formation-energy-2018": _ref(reference, "mp-2018.6.1/formation_energy.hdf5"),
        "megnet-efermi": _ref(reference, "mp-2019.4.1/efermi.hdf5"),
        "megnet-bulk-modulus": 10 ** _ref(reference, "mp-2019.4.1/log10K.hdf5"),
        "megnet-shear-modulus": 10 ** _ref(reference, "mp-2019.4.1/log10G.hdf5"),
    }
    for name, values in expected.items():
        predictor = load_predictor(name)
        final = predictor.final(batch).double()
        soft = predictor(batch).double()
        tolerance = ATOL * 10 * values.abs().clamp_min(1.0) if "modulus" in name else ATOL  # 10**y: relative
        assert ((final - values).abs() <= tolerance).all(), name
        assert torch.allclose(soft, final), name

    gap = _ref(reference, "mp-2018.6.1/band_gap_regression.hdf5")
    p_nonmetal = _ref(reference, "mp-2018.6.1/band_classification.hdf5")
    predictor = load_predictor("megnet-band-gap")
    hard = torch.where(p_nonmetal < 0.5, torch.zeros_like(gap), gap.clamp_min(0.0))
    assert (predictor.final(batch).double() - hard).abs().max() < ATOL
    assert (predictor(batch).double() - gap * p_nonmetal).abs().max() < ATOL


@pytest.mark.parametrize("fidelity", list(FIDELITIES))
def test_multi_fidelity_ensemble(reference: list[dict], batch: CrystalBatch, fidelity: str) -> None:
    predictor = load_predictor("megnet-mf-band-gap", fidelity=fidelity)
    state = FIDELITIES[fidelity]
    mean, std = predictor.predict_with_uncertainty(batch)
    derived = [record["derived"] for record in reference]
    expected_mean = torch.tensor([d[f"mf_2020/pbe_gllb_hse_exp/ensemble_mean#state={state}"] for d in derived])
    expected_std = torch.tensor([d[f"mf_2020/pbe_gllb_hse_exp/ensemble_std#state={state}"] for d in derived])
    assert (mean.double() - expected_mean.double()).abs().max() < ATOL
    assert (std.double() - expected_std.double()).abs().max() < ATOL
    assert torch.allclose(predictor.final(batch), mean)


def test_bad_options() -> None:
    with pytest.raises(PredictorError, match="fidelity"):
        load_predictor("megnet-mf-band-gap", fidelity="scan")
    with pytest.raises(PredictorError, match="smooth_cutoff"):
        load_predictor("megnet-efermi", smooth_cutoff=-1.0)


def test_elements_without_embedding_give_nan() -> None:
    lattice = torch.eye(3)[None] * 3.0
    species = torch.tensor([94, 7, 11, 7])  # Am (Z = 95) O | Mg O
    frac = torch.tensor([[0, 0, 0], [0.5, 0.5, 0.5]] * 2)
    crystals = CrystalBatch.from_species(lattice.repeat(2, 1, 1), frac, species, torch.tensor([2, 2]))
    out = load_predictor("megnet-formation-energy").final(crystals)
    assert math.isnan(out[0].item()) and math.isfinite(out[1].item())


# ------------------------------------------------------------------------------------------------------- gradients


def _perturbed_batch(dtype: torch.dtype = torch.float64) -> CrystalBatch:
    """A distorted 5-atom perovskite and a 2-atom rocksalt-like cell, soft species, float64."""
    gen = torch.Generator().manual_seed(0)
    lattice = torch.stack([torch.eye(3) * 3.95, torch.tensor([[0.0, 2.8, 2.8], [2.8, 0.0, 2.8], [2.8, 2.8, 0.0]])])
    lattice = lattice.to(dtype) + 0.05 * torch.randn(2, 3, 3, generator=gen, dtype=dtype)
    frac = torch.tensor(
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5], [0, 0, 0], [0.5, 0.5, 0.5]],
        dtype=dtype,
    )
    frac = frac + 0.02 * torch.randn(frac.shape, generator=gen, dtype=dtype)
    species = torch.tensor([37, 21, 7, 7, 7, 10, 16])  # Sr Ti O O O | Na Cl
    logits = torch.nn.functional.one_hot(species, 98).to(dtype) * 3.0
    probs = torch.softmax(logits + 0.3 * torch.rand(7, 98, generator=gen, dtype=dtype), dim=-1)
    n_atoms = torch.tensor([5, 2])
    crystal_idx = torch.repeat_interleave(torch.arange(2), n_atoms)
    return CrystalBatch(lattice, frac, probs, crystal_idx, n_atoms)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("megnet-band-gap", {}),
        ("megnet-formation-energy", {}),
        ("megnet-mf-band-gap", {"fidelity": "exp", "smooth_cutoff": 1.0}),
    ],
)
@pytest.mark.parametrize("wrt", ["lattice", "frac_coords", "species_probs"])
def test_gradients_match_finite_differences(name: str, options: dict, wrt: str) -> None:
    predictor = load_predictor(name, **options).double()
    base = _perturbed_batch()
    predictor.rebuild(base)  # fixed graph; distances recomputed from the inputs

    def f(x: torch.Tensor) -> torch.Tensor:
        fields = {f: getattr(base, f) for f in ("lattice", "frac_coords", "species_probs", "crystal_idx", "n_atoms")}
        fields[wrt] = x
        return predictor(CrystalBatch(**fields))

    x = getattr(base, wrt).clone().requires_grad_(True)
    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True)


def test_smooth_cutoff_is_exact_away_from_the_skin_and_continuous_across_it(reference: list[dict]) -> None:
    record = next(r for r in reference if r["name"].startswith("NaCl"))
    exact = load_predictor("megnet-formation-energy-2018")
    smooth = load_predictor("megnet-formation-energy-2018", smooth_cutoff=0.5)
    nacl = _batch([record], torch.float64)
    exact, smooth = exact.double(), smooth.double()
    # a = 5.64 Å: pairs at 3.988 (inside) and 4.88 Å (beyond 4.5): no distance in (4, 4.5), identical outputs.
    smooth.rebuild(nacl)
    assert torch.allclose(smooth(nacl), exact.final(nacl), atol=1e-10)

    def at(a: float) -> CrystalBatch:
        lattice = nacl.lattice * (a / 5.64)
        return CrystalBatch(lattice, nacl.frac_coords, nacl.species_probs, nacl.crystal_idx, nacl.n_atoms)

    edge = 4.0 * math.sqrt(2.0)  # second neighbours at a / √2 cross the 4 Å cutoff here
    below, above = at(edge - 1e-5), at(edge + 1e-5)
    jump_exact = (exact.final(above) - exact.final(below)).abs().item()
    smooth.rebuild(below)
    value_below = smooth(below)
    smooth.rebuild(above)
    jump_smooth = (smooth(above) - value_below).abs().item()
    assert jump_exact > 1e-2
    assert jump_smooth < 1e-3
    assert torch.allclose(cutoff_weight(torch.tensor([3.9, 4.0, 4.25, 4.5, 5.0]), 4.0, 0.5),
                          torch.tensor([1.0, 1.0, 0.5, 0.0, 0.0]), atol=1e-7)  # fmt: skip
