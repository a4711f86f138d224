"""Issue 7: bad inputs and faults give a correct result or one clear error, on real files."""

import json
import math
import os
import shutil
import struct

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Subset

import predict
import train
from datasets import FILES, CorruptMNISTError, MNISTNotFoundError, ensure_mnist, load_data, mnist_split, normalize
from model import Net
from predict import DEFAULT_CHECKPOINT, predict_image
from userset import write_userset
from util import config_from_env, load_checkpoint, save_checkpoint

TINY = ["--epochs", "1", "--subset", "1500"]  # 12 steps on real images: enough for the one-cycle schedule


@pytest.fixture(scope="module")
def model():
    return load_checkpoint(DEFAULT_CHECKPOINT)[0]


@pytest.fixture(scope="module")
def digits(data_dir):
    test = mnist_split(False, data_dir, subset=30)
    return test.images.numpy(), test.labels.numpy()


def copy_mnist(data_dir, dest, rename=None):
    """The four real files copied to dest, each under rename.get(name, name)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copy(data_dir / name, dest / (rename or {}).get(name, name))
    return dest


# --- silent wrong results ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["I;16", "I", "F"])
def test_high_bit_depth_images_are_scaled_by_their_range(model, digits, mode, tmp_path):
    images, labels = digits
    hits = 0
    for i, (digit, label) in enumerate(zip(images, labels)):
        paper = 1.0 - digit.astype(np.float64) / 255  # dark ink on white paper, as a scanner gives it
        scale = {"I;16": 65535, "I": 1_000_000, "F": 1.0}[mode]
        big = Image.fromarray(paper.astype(np.float32), "F").resize((112, 112), Image.Resampling.BICUBIC)
        values = np.clip(np.asarray(big, np.float64), 0, 1) * scale
        if mode == "I;16":
            img = Image.fromarray(values.astype(np.uint16))
        elif mode == "I":
            img = Image.fromarray(values.astype(np.int32))
        else:
            img = Image.fromarray(values.astype(np.float32))
        assert img.mode == mode
        path = tmp_path / f"{i}.{'png' if mode == 'I;16' else 'tif'}"
        img.save(path)
        hits += predict_image(model, path).digit == label
    assert hits >= len(labels) - 1  # the 8-bit copies of these digits are all right


@pytest.mark.parametrize("case", ["train labels swapped with test labels", "train split swapped with test split"])
def test_swapped_mnist_files_are_refused_before_training(data_dir, tmp_path, case):
    if case.startswith("train labels"):
        labels = ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte")
        rename = {labels[0]: labels[1], labels[1]: labels[0]}
    else:
        rename = {n: n.replace("train", "T").replace("t10k", "train").replace("T", "t10k") for n in FILES}
    copy_mnist(data_dir, tmp_path / "MNIST" / "raw", rename)
    with pytest.raises(CorruptMNISTError, match="holds 10,000 items, but the train split has 60,000.*swapped"):
        load_data(64, tmp_path)
    with pytest.raises(SystemExit) as info:
        train.main([*TINY, "--data-dir", str(tmp_path), "--out", str(tmp_path / "run")])
    assert info.value.code == 2
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_nan_or_infinite_learning_rate_is_refused(capsys):
    for lr in ("nan", "inf"):
        with pytest.raises(SystemExit):
            train.main(["--lr", lr])
        assert "--lr must be a positive finite number" in capsys.readouterr().err


def test_diverging_run_stops_keeps_the_last_good_checkpoint_and_fails(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    train.main([*TINY, "--data-dir", str(data_dir), "--out", str(out)])
    good = (out / "checkpoint.pt").read_bytes()
    with pytest.raises(SystemExit) as info:
        train.main([*TINY, "--lr", "1e6", "--data-dir", str(data_dir), "--out", str(out), "--force"])
    assert info.value.code == 1
    assert "training diverged" in capsys.readouterr().err
    assert (out / "checkpoint.pt").read_bytes() == good  # epoch 1 never completed: the old checkpoint stays
    json.loads((out / "history.json").read_text())  # still valid JSON


def test_non_finite_checkpoints_are_refused(tmp_path):
    model = Net()
    with torch.no_grad():
        model.head[0].weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite"):
        save_checkpoint(tmp_path / "nan.pt", model, config_from_env({}), {})
    torch.save({"arch": "Net", "state_dict": model.state_dict()}, tmp_path / "nan.pt")
    with pytest.raises(ValueError, match="non-finite weights.*head.0.weight"):
        load_checkpoint(tmp_path / "nan.pt")
    assert predict.main([str(tmp_path), "--checkpoint", str(tmp_path / "nan.pt")]) == 2


# --- lost work ----------------------------------------------------------------------------------------------


def test_runs_never_replace_an_earlier_run(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    flags = [*TINY, "--data-dir", str(data_dir)]
    train.main(flags)
    train.main(flags)
    printed = capsys.readouterr().out
    assert "writing to runs/15k-seed0/" in printed and "writing to runs/15k-seed0-2/" in printed
    first = (tmp_path / "runs" / "15k-seed0" / "checkpoint.pt").read_bytes()
    with pytest.raises(SystemExit):
        train.main([*flags, "--out", "runs/15k-seed0"])
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--force" in err
    assert (tmp_path / "runs" / "15k-seed0" / "checkpoint.pt").read_bytes() == first


def test_unwritable_out_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "file").write_text("x")  # a folder inside a file cannot be created, even by root
    with pytest.raises(SystemExit) as info:
        train.main([*TINY, "--data-dir", str(tmp_path / "no-data"), "--out", str(tmp_path / "file" / "run")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and f"cannot write to output folder {tmp_path / 'file' / 'run'}" in err
    assert "MNIST" not in err  # checked before the data is even looked for


def test_out_that_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    with pytest.raises(SystemExit) as info:
        train.main([*TINY, "--out", str(tmp_path / "f")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith("error: ") and "is a file" in err and "Traceback" not in err


# --- errors that should be one clear line --------------------------------------------------------------------


def test_expected_training_errors_are_one_line(data_dir, tmp_path, capsys):
    cases = {
        "MNIST files not found": ["--data-dir", str(tmp_path / "nowhere")],
        "at least 10 steps": ["--epochs", "1", "--subset", "100", "--data-dir", str(data_dir)],
    }
    for i, (message, flags) in enumerate(cases.items()):
        with pytest.raises(SystemExit) as info:
            train.main([*flags, "--out", str(tmp_path / f"run{i}")])
        err = capsys.readouterr().err
        assert info.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "nowhere").exists()  # a failed lookup creates nothing


def test_predict_reports_bad_inputs_one_by_one_and_predicts_the_rest(digits, tmp_path, capsys):
    [(good, label)] = write_userset(tmp_path / "one", digits[0][:1], digits[1][:1])
    (tmp_path / "empty").mkdir()
    bomb = tmp_path / "bomb.png"
    Image.new("1", (30000, 30000)).save(bomb)  # a tiny file whose header claims 900 megapixels
    args = [str(tmp_path / "empty"), str(tmp_path / "missing.png"), str(bomb), str(good), "--json"]
    assert predict.main(args) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["error"].split(": ", 1)[1][:18] for line in lines[:3]] == [
        "folder holds no im", "no such file or fo", "image is too large"]
    assert lines[3]["digit"] == label


def test_uint8_batch_error_says_how_to_convert():
    with pytest.raises(TypeError, match=r"got dtype torch.uint8.*x.float\(\) / 255"):
        Net()(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))


def test_data_dir_may_be_the_folder_holding_the_files(data_dir, tmp_path):
    flat = copy_mnist(data_dir, tmp_path / "flat")
    assert ensure_mnist(flat) == flat
    assert ensure_mnist(data_dir) == data_dir  # MNIST/raw itself
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(MNISTNotFoundError):
        ensure_mnist(tmp_path / "typo" / "data")  # download fails offline; in CI and here there is no network
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_foreign_checkpoints_get_a_safe_message(tmp_path):
    (tmp_path / "random.pt").write_bytes(os.urandom(4096))
    with pytest.raises(ValueError) as info:
        load_checkpoint(tmp_path / "random.pt")
    assert "not a checkpoint written by this project" in str(info.value)
    assert "weights_only=False unless you trust" in str(info.value)  # a warning, not torch's invitation
    state = Net().state_dict()
    state["head.0.weight"] = "not a tensor"
    torch.save({"arch": "Net", "state_dict": state}, tmp_path / "odd.pt")
    with pytest.raises(ValueError, match="no 'state_dict' of tensors"):
        load_checkpoint(tmp_path / "odd.pt")


def test_notebook_parameters_name_the_bad_variable():
    with pytest.raises(ValueError, match="S6_EPOCHS='abc' must be an integer"):
        config_from_env({"S6_EPOCHS": "abc"})
    with pytest.raises(ValueError, match="S6_MODEL='9k' is not a model size"):
        config_from_env({"S6_MODEL": "9k"})
    cfg = config_from_env({"S6_EPOCHS": "3", "S6_MODEL": "4k", "S6_SUBSET": "", "MNIST_DATA_DIR": "/d"})
    assert (cfg.epochs, cfg.model, cfg.subset, cfg.data_dir) == (3, "4k", None, "/d")


# --- loaders that behave like DataLoaders --------------------------------------------------------------------


@pytest.mark.parametrize("pipeline", ["fast", "torchvision"])
def test_loader_dataset_is_a_map_style_dataset(data_dir, pipeline):
    train_loader, test_loader = load_data(128, data_dir, pipeline=pipeline)
    assert len(train_loader.dataset) == 60_000 and len(test_loader.dataset) == 10_000
    x, y = test_loader.dataset[3]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and isinstance(y, int)
    first_x, first_y = next(iter(test_loader))
    torch.testing.assert_close(x, first_x[3])
    assert y == int(first_y[3])
    small = DataLoader(Subset(train_loader.dataset, range(6000)), batch_size=500)
    assert sum(len(yb) for _, yb in small) == 6000
    again = DataLoader(test_loader.dataset, batch_size=1000)
    xb, yb = next(iter(again))
    assert xb.shape == (1000, 1, 28, 28) and yb.dtype == torch.int64
    raw = test_loader.dataset.images[3] if pipeline == "fast" else None
    if raw is not None:
        torch.testing.assert_close(x[0], normalize(raw.float() / 255))
    assert math.isclose(float(xb.mean()), 0.0, abs_tol=0.05)


def test_idx_header_counts_are_read(data_dir):
    with open(data_dir / "train-labels-idx1-ubyte", "rb") as f:
        assert struct.unpack(">II", f.read(8)) == (2049, 60_000)
