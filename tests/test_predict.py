"""predict.py: people's images turned into MNIST-style inputs and read; bad inputs reported one by one."""

import json

import numpy as np
import pytest
import torch
from conftest import payload_of
from PIL import Image

import predict
from evidence.userset import render_as_photo, write_userset
from model import Net
from predict import ImageError, collect_images, predict_image, preprocess


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


def test_the_rejection_model_gives_the_verdict_and_the_model_the_digit(digits, model, tmp_path, capsys):
    import checkpoint
    from checkpoint import DEFAULT_REJECTOR, load_checkpoint
    from model import normalize

    rejector = load_checkpoint(DEFAULT_REJECTOR)[0]
    for digit in digits[0][:5]:
        img = Image.fromarray(255 - digit)
        alone, paired = predict.predict_image(model, img), predict.predict_image(model, img, rejector=rejector)
        assert (paired.digit, paired.top3) == (alone.digit, alone.top3) and alone.verdict_probability is None
        with torch.no_grad():
            own = float(rejector(normalize(paired.image)[None, None]).exp().amax())
        assert paired.verdict_probability == pytest.approx(own)
        assert paired.is_digit == (own >= checkpoint.REJECT_BELOW)  # the rejection model's threshold for its verdict
        assert alone.is_digit == (alone.probability >= checkpoint.OWN_REJECT_BELOW)  # the model's own for its own
    [(path, _)] = write_userset(tmp_path, digits[0][:1], digits[1][:1])
    assert predict.main([str(path), "--json", "--rejector", "none"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict_probability"] is None
    assert predict.main([str(path), "--rejector", str(tmp_path / "gone.pt")]) == 2
    err = capsys.readouterr().err
    assert "gone.pt does not exist" in err and "--rejector none" in err


def test_missing_path_and_tiny_image_are_clear_errors(tmp_path):
    [missing] = collect_images([tmp_path / "nope.png"])
    assert isinstance(missing, ImageError) and "no such file" in str(missing)
    assert missing.path == str(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="too small"):
        preprocess(Image.new("L", (2, 2)))


@pytest.mark.parametrize("mode", ["I;16", "I", "F"])
def test_high_bit_depth_images_are_scaled_by_their_range(model, digits, mode, tmp_path):
    images, labels = digits[0][:30], digits[1][:30]
    hits = 0
    for i, (digit, label) in enumerate(zip(images, labels)):
        paper = 1.0 - digit.astype(np.float64) / 255  # dark ink on white paper, as a scanner gives it
        scale = {"I;16": 65535, "I": 1_000_000, "F": 1.0}[mode]
        big = Image.fromarray(paper.astype(np.float32), "F").resize((112, 112), Image.Resampling.BICUBIC)
        values = np.clip(np.asarray(big, np.float64), 0, 1) * scale
        kind = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
        img = Image.fromarray(values.astype(kind))
        assert img.mode == mode
        path = tmp_path / f"{i}.{'png' if mode == 'I;16' else 'tif'}"
        img.save(path)
        hits += predict_image(model, path).digit == label
    assert hits >= len(labels) - 1  # the 8-bit copies of these digits are all right


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


def test_non_finite_checkpoint_is_exit_2(tmp_path):
    model = Net()
    with torch.no_grad():
        model.head[0].weight.fill_(float("nan"))
    torch.save(payload_of(model), tmp_path / "nan.pt")
    assert predict.main([str(tmp_path), "--checkpoint", str(tmp_path / "nan.pt")]) == 2
