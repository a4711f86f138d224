import json

import numpy as np
import pytest
import torch
from PIL import Image

import predict
from datasets import mnist_split
from predict import DEFAULT_CHECKPOINT, ImageError, collect_images, predict_image, preprocess
from userset import render_as_photo, write_userset
from util import load_checkpoint


@pytest.fixture(scope="module")
def digits(data_dir):
    test = mnist_split(False, data_dir, subset=40)
    return test.images.numpy(), test.labels.numpy()


@pytest.fixture(scope="module")
def model():
    return load_checkpoint(DEFAULT_CHECKPOINT)[0]


def centre_of_mass(x):
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    return float((ys * x).sum() / x.sum()), float((xs * x).sum() / x.sum())


def test_preprocessing_makes_mnist_style_input(digits, tmp_path):
    rng = np.random.default_rng(1)
    for digit in digits[0][:10]:
        img, suffix = render_as_photo(digit, rng)
        path = tmp_path / f"d{suffix}"
        img.save(path)
        x = preprocess(path)
        assert x.shape == (28, 28) and x.dtype == torch.float32
        assert 0 <= float(x.min()) and float(x.max()) <= 1 and float(x.max()) > 0.9
        cy, cx = centre_of_mass(x)
        assert abs(cy - 13.5) < 1.0 and abs(cx - 13.5) < 1.0  # centred by mass
        rows, cols = x.sum(1).nonzero().flatten(), x.sum(0).nonzero().flatten()
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 <= 21  # longer side ~20 px
        assert float(x[0].sum() + x[-1].sum() + x[:, 0].sum() + x[:, -1].sum()) == 0  # black margin


def test_dark_and_light_backgrounds_give_the_same_input(digits):
    digit = digits[0][0]
    big = Image.fromarray(digit).resize((140, 140), Image.Resampling.BICUBIC)
    white_on_black = preprocess(big)
    black_on_white = preprocess(Image.fromarray(255 - np.asarray(big)))
    assert (white_on_black - black_on_white).abs().max() < 0.05


def test_transparent_background_counts_as_paper(digits, model):
    alpha = Image.fromarray(digits[0][1]).resize((100, 100))
    rgba = Image.merge("RGBA", (*Image.new("RGB", (100, 100), (20, 20, 120)).split(), alpha))
    assert predict_image(model, rgba).digit == int(digits[1][1])


def test_predicts_rendered_test_digits_in_every_format(digits, model, tmp_path):
    files = write_userset(tmp_path, *digits, seed=3)
    suffixes = {p.suffix for p, _ in files}
    assert {".png", ".jpg", ".bmp", ".gif"} <= suffixes
    correct = sum(predict_image(model, p).digit == label for p, label in files)
    assert correct >= 38  # of 40: the user-style bar is 97%


def test_cli_reports_bad_files_and_predicts_the_rest(digits, tmp_path, capsys):
    files = write_userset(tmp_path, digits[0][:3], digits[1][:3], seed=4)
    (tmp_path / "notes.png").write_text("this is not an image")
    Image.new("L", (60, 40), 230).save(tmp_path / "blank.png")
    code = predict.main([str(tmp_path), "--json"])
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert code == 1
    by_name = {r["path"].split("/")[-1]: r for r in rows}
    assert "not a readable image" in by_name["notes.png"]["error"]
    assert "looks blank" in by_name["blank.png"]["error"]
    for path, label in files:
        r = by_name[path.name]
        assert r["digit"] == label and len(r["top3"]) == 3 and 0 < r["probability"] <= 1
    assert "2 of 5 input(s) could not be predicted" in captured.err


def test_cli_text_output_and_error_exits(digits, tmp_path, capsys):
    [(path, label)] = write_userset(tmp_path / "one", digits[0][:1], digits[1][:1])
    assert predict.main([str(path)]) == 0
    assert f": {label} (" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert predict.main([str(tmp_path / "empty")]) == 1
    assert "folder holds no images" in capsys.readouterr().err
    assert predict.main([str(path), "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_missing_path_and_tiny_image_are_clear_errors(tmp_path):
    [missing] = collect_images([tmp_path / "nope.png"])
    assert isinstance(missing, ImageError) and "no such file" in str(missing)
    assert missing.path == str(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="too small"):
        preprocess(Image.new("L", (2, 2)))


def test_shipped_checkpoint_is_weights_only_and_described():
    payload = torch.load(DEFAULT_CHECKPOINT, weights_only=True)
    assert payload["arch"] == "Net" and payload["parameters"] == 15_248
    assert payload["history"]["test_acc"][-1] >= 99.4
    assert DEFAULT_CHECKPOINT.stat().st_size < 200_000


def test_mnist_stroke_constant_matches_real_training_digits(data_dir):
    from datasets import DIGIT_BOX, MNIST_STROKE
    from userset import WORK_BOX, stroke_width

    widths = []
    for digit in mnist_split(True, data_dir, subset=300).images.numpy():
        x = digit.astype(np.float32) / 255
        rows, cols = np.nonzero(x.sum(1))[0], np.nonzero(x.sum(0))[0]
        x = x[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        scale = WORK_BOX / max(x.shape)
        size = (max(1, round(x.shape[1] * scale)), max(1, round(x.shape[0] * scale)))
        work = np.asarray(Image.fromarray(x).resize(size, Image.Resampling.BILINEAR))
        widths.append(stroke_width(work > 0.5) * DIGIT_BOX / WORK_BOX)
    assert abs(np.median(widths) - MNIST_STROKE) / MNIST_STROKE < 0.1


def test_handwriting_conditions_are_read(model, data_dir):
    from userset import CONDITIONS, condition_accuracy

    test = mnist_split(False, data_dir, subset=40)
    report = condition_accuracy(model, test.images.numpy(), test.labels.numpy())
    assert list(report) == list(CONDITIONS) and all(r["n"] == 40 for r in report.values())
    accs = [r["accuracy"] for r in report.values()]
    assert min(accs) >= 85 and sum(accs) / len(accs) >= 95  # results/robustness.json has the 1000-digit figures
