"""datasets.py: finding and checking the MNIST files, both pipelines, augmentation, DataLoader behaviour."""

import math
import shutil
import struct

import pytest
import torch
import torchvision.transforms.functional as TF
from conftest import copy_mnist
from torch.utils.data import DataLoader, Subset

from datasets import DATA_ENV, FILES, CorruptMNISTError, MNISTNotFoundError, ensure_mnist, load_data
from loader import CROP_SIZE, affine_batch, augment_batch
from model import normalize


@pytest.mark.parametrize("pipeline", ["fast", "torchvision"])
def test_sizes_shapes_dtypes_labels(data_dir, pipeline):
    train, test = load_data(256, data_dir, pipeline=pipeline)
    assert (len(train.dataset), len(test.dataset)) == (60_000, 10_000)
    assert (len(train), len(test)) == (math.ceil(60_000 / 256), 10)
    x, y = next(iter(train))
    assert x.shape == (256, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (256,) and y.dtype == torch.int64
    assert 0 <= int(y.min()) and int(y.max()) <= 9


def test_whole_test_set_is_normalised_and_complete(data_dir):
    _, test = load_data(64, data_dir)
    images = torch.cat([x for x, _ in test])
    labels = torch.cat([y for _, y in test])
    assert images.shape == (10_000, 1, 28, 28)
    assert abs(float(images.mean())) < 0.02  # the training-set statistics fit the test set closely
    assert abs(float(images.std()) - 1) < 0.02
    assert torch.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_both_pipelines_give_the_same_test_images(data_dir):
    _, fast = load_data(500, data_dir, test_batch_size=500, subset=1000)
    _, tv = load_data(500, data_dir, test_batch_size=500, subset=1000, pipeline="torchvision")
    for (xf, yf), (xt, yt) in zip(fast, tv):
        torch.testing.assert_close(xf, xt)
        assert torch.equal(yf, yt)


@pytest.mark.parametrize("pipeline", ["fast", "torchvision"])
def test_same_seed_same_batches_other_seed_differs(data_dir, pipeline):
    def first_batch(seed):
        torch.manual_seed(seed)  # the torchvision path draws augmentation from the global generator
        train, _ = load_data(32, data_dir, seed=seed, pipeline=pipeline, subset=2000)
        return next(iter(train))

    (x0, y0), (x0b, y0b), (x1, y1) = first_batch(0), first_batch(0), first_batch(1)
    assert torch.equal(x0, x0b) and torch.equal(y0, y0b)
    assert not torch.equal(y0, y1) and not torch.equal(x0, x1)


def test_training_data_is_shuffled_every_epoch_and_test_data_never(data_dir):
    train, test = load_data(100, data_dir, subset=1000)
    first, second = next(iter(train))[1], next(iter(train))[1]
    assert not torch.equal(first, second)
    ordered = torch.cat([y for _, y in test])
    again = torch.cat([y for _, y in test])
    assert torch.equal(ordered, again)
    assert torch.equal(ordered, test.dataset.targets)


def test_missing_directory_names_dir_files_and_env_var(tmp_path):
    with pytest.raises(MNISTNotFoundError) as info:
        load_data(64, tmp_path / "nowhere", download=False)
    message = str(info.value)
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in message
    assert all(name in message for name in FILES)
    assert DATA_ENV in message


def test_environment_variable_is_used(data_dir, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(data_dir))
    assert ensure_mnist() == data_dir
    monkeypatch.setenv(DATA_ENV, "/nonexistent/mnist")
    with pytest.raises(MNISTNotFoundError, match="/nonexistent/mnist"):
        ensure_mnist(download=False)


def test_truncated_file_is_reported(data_dir, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in FILES:
        shutil.copy(data_dir / name, raw / name)
    with open(raw / "t10k-images-idx3-ubyte", "r+b") as f:
        f.truncate(100_000)
    with pytest.raises(CorruptMNISTError, match="t10k-images-idx3-ubyte is truncated"):
        load_data(64, tmp_path)
    shutil.copy(data_dir / "t10k-images-idx3-ubyte", raw)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"<html>not found</html>")
    with pytest.raises(CorruptMNISTError, match="not an MNIST IDX file"):
        ensure_mnist(tmp_path)


def real_digits(data_dir, n=8):
    _, test = load_data(n, data_dir, test_batch_size=n, subset=n)
    x, _ = next(iter(test))
    return x * 0.3081 + 0.1307  # back to [0, 1] pixels


@pytest.mark.parametrize("degrees", [-15.0, -7.5, 4.0, 15.0])
def test_rotation_matches_torchvision(data_dir, degrees):
    x = real_digits(data_dir)
    ours = affine_batch(x, torch.full((len(x),), math.radians(degrees)), torch.zeros(len(x), dtype=torch.bool))
    theirs = TF.rotate(x, degrees, interpolation=TF.InterpolationMode.BILINEAR, fill=0)
    assert (ours - theirs).abs().mean() < 0.01
    assert (ours - theirs).abs().max() < 0.2


def test_centre_crop_zoom_matches_torchvision(data_dir):
    x = real_digits(data_dir)
    ours = affine_batch(x, torch.zeros(len(x)), torch.ones(len(x), dtype=torch.bool))
    theirs = TF.resize(TF.center_crop(x, CROP_SIZE), [28, 28], antialias=True)
    assert (ours - theirs).abs().mean() < 0.02
    identity = affine_batch(x, torch.zeros(len(x)), torch.zeros(len(x), dtype=torch.bool))
    torch.testing.assert_close(identity, x, atol=1e-5, rtol=0)


def test_augmentation_is_seeded_and_keeps_the_digit(data_dir):
    x = real_digits(data_dir)
    a = augment_batch(x, torch.Generator().manual_seed(0))
    b = augment_batch(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert not torch.equal(a, x)
    assert a.min() >= 0 and a.max() <= 1  # black fill, no overshoot
    # rotation keeps ink; a 28/22 zoom adds at most (28/22)^2 of it
    ratio = a.sum((1, 2, 3)) / x.sum((1, 2, 3))
    assert ((ratio > 0.85) & (ratio < (28 / 22) ** 2 * 1.05)).all()
    assert torch.allclose(normalize(torch.zeros(1)), torch.tensor([-0.1307 / 0.3081]))


def test_load_data_checks_its_levers_as_the_recipe_does(data_dir):
    with pytest.raises(ValueError, match="stroke_prob must be 0 with pipeline 'torchvision'"):
        load_data(64, data_dir, pipeline="torchvision", stroke_prob=0.5)


@pytest.mark.parametrize("case", ["train labels swapped with test labels", "train split swapped with test split"])
def test_swapped_mnist_files_are_refused(data_dir, tmp_path, case):
    if case.startswith("train labels"):
        labels = ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte")
        rename = {labels[0]: labels[1], labels[1]: labels[0]}
    else:
        rename = {n: n.replace("train", "T").replace("t10k", "train").replace("T", "t10k") for n in FILES}
    copy_mnist(data_dir, tmp_path / "MNIST" / "raw", rename)
    with pytest.raises(CorruptMNISTError, match="holds 10,000 items, but the train split has 60,000.*swapped"):
        load_data(64, tmp_path)


def test_data_dir_may_be_the_folder_holding_the_files(data_dir, tmp_path):
    flat = copy_mnist(data_dir, tmp_path / "flat")
    assert ensure_mnist(flat) == flat
    assert ensure_mnist(data_dir) == data_dir  # MNIST/raw itself
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(MNISTNotFoundError):
        ensure_mnist(tmp_path / "typo" / "data")  # download fails offline; in CI and here there is no network
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_idx_header_counts_are_read(data_dir):
    with open(data_dir / "train-labels-idx1-ubyte", "rb") as f:
        assert struct.unpack(">II", f.read(8)) == (2049, 60_000)


@pytest.mark.parametrize("pipeline", ["fast", "torchvision"])
def test_loader_dataset_is_a_map_style_dataset_like_torchvisions_mnist(data_dir, pipeline):
    train_loader, test_loader = load_data(128, data_dir, pipeline=pipeline)
    assert len(train_loader.dataset) == 60_000 and len(test_loader.dataset) == 10_000
    x, y = test_loader.dataset[3]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and isinstance(y, int)
    first_x, first_y = next(iter(test_loader))
    torch.testing.assert_close(x, first_x[3])
    assert y == int(first_y[3])
    small = DataLoader(Subset(train_loader.dataset, range(6000)), batch_size=500)
    assert sum(len(yb) for _, yb in small) == 6000
    xb, yb = next(iter(DataLoader(test_loader.dataset, batch_size=1000)))
    assert xb.shape == (1000, 1, 28, 28) and yb.dtype == torch.int64
    assert math.isclose(float(xb.mean()), 0.0, abs_tol=0.05)
    # torchvision's MNIST answers .data (uint8 N x 28 x 28) and .targets (int64 N): so does ours
    data, targets = train_loader.dataset.data, train_loader.dataset.targets
    assert data.shape == (60_000, 28, 28) and data.dtype == torch.uint8
    assert targets.shape == (60_000,) and targets.dtype == torch.int64
    torch.testing.assert_close(x[0], normalize(test_loader.dataset.data[3].float() / 255))
    assert int(test_loader.dataset.targets[3]) == y


@pytest.mark.slow  # several seconds: kept out of the quick loop
def test_centre_lines_are_kept_on_disk_and_reused(data_dir, tmp_path, monkeypatch, capsys):
    from datasets import mnist_split
    from loader import CACHE_ENV, CACHE_MIN, cached_centre_lines
    from pens import centre_lines

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    digits = mnist_split(True, data_dir, subset=CACHE_MIN).data
    first = cached_centre_lines(digits)
    assert "finding the centre lines of 5,000 digits" in capsys.readouterr().out
    [kept] = tmp_path.glob("centre-lines-*.npy")
    again = cached_centre_lines(digits)
    assert capsys.readouterr().out == ""  # read from the file, nothing recomputed
    assert torch.equal(first, again) and torch.equal(first[:50], centre_lines(digits[:50]))
    other = cached_centre_lines(mnist_split(False, data_dir, subset=CACHE_MIN).data)
    assert len(list(tmp_path.glob("centre-lines-*.npy"))) == 2 and not torch.equal(other, first)
    kept.write_bytes(b"truncated")
    assert torch.equal(cached_centre_lines(digits), first)  # a broken file is computed again
