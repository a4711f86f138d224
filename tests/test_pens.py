"""pens.py: centre lines, round pens, and the one framing of a digit that training and predict.py share."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from datasets import load_data, mnist_split
from pens import DIGIT_BOX, MNIST_STROKE, PEN_RES, centre_lines, draw_strokes, frame_digits, pen_ink, redraw_strokes
from predict import preprocess


def real_digits(data_dir, n=64):
    """The first n MNIST test digits as (n, 1, 28, 28) pixels in [0, 1]."""
    return mnist_split(False, data_dir, subset=n).data[:, None].float() / 255


def mass_centre(x):
    """(rows, cols) centre of mass of each (B, 1, 28, 28) image."""
    grid = torch.arange(28.0)
    m = x.sum((1, 2, 3))
    return (x[:, 0].sum(2) * grid).sum(1) / m, (x[:, 0].sum(1) * grid).sum(1) / m


def test_redrawn_strokes_keep_the_digit_and_vary_the_pen(data_dir):
    x = real_digits(data_dir)
    lines = centre_lines((x[:, 0] * 255).round().to(torch.uint8))
    assert lines.shape == (64, 56, 56) and lines.any((1, 2)).all()
    ink = {w: draw_strokes(lines, torch.full((64,), w)) for w in (0.5, 1.0, 2.0, 3.0)}
    mass = {w: float(v.sum()) for w, v in ink.items()}
    assert mass[0.5] < mass[1.0] < mass[2.0] < mass[3.0]
    # MNIST's own pen redrawn: the same strokes, up to a pixel (the digit is framed anew)
    same_pen, original = ink[1.0] > 0.5, x > 0.5
    near = lambda m: F.max_pool2d(m.float(), 3, 1, 1) > 0  # noqa: E731
    assert float((same_pen & near(original)).sum() / same_pen.sum()) > 0.95
    assert float((original & near(same_pen)).sum() / original.sum()) > 0.9
    for v in ink.values():  # framed as MNIST: ink up to 1, longer side DIGIT_BOX px, mass at the centre
        assert v.min() >= 0 and torch.allclose(v.amax((1, 2, 3)), torch.ones(64))
        rows, cols = (v[:, 0] > 0.05).any(2), (v[:, 0] > 0.05).any(1)
        extent = torch.maximum(rows.sum(1), cols.sum(1)).float()
        assert (extent - DIGIT_BOX).abs().median() <= 1
        cy, cx = mass_centre(v)
        assert (cy - 13.5).abs().max() < 1 and (cx - 13.5).abs().max() < 1
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    none, chosen = redraw_strokes(x, lines, 0.0, g())
    assert torch.equal(none, x) and not chosen.any()
    every, chosen = redraw_strokes(x, lines, 1.0, g())
    assert chosen.all() and torch.equal(every, redraw_strokes(x, lines, 1.0, g())[0])
    assert not (every == x).all((1, 2, 3)).any()


@pytest.mark.parametrize("width", [0.5, 1.0, 3.0])
def test_training_and_predict_frame_the_same_digit_the_same_way(data_dir, width):
    """A redrawn digit framed by the training pipeline, and the same ink photographed (enlarged, off-centre,
    dark on white paper) and read by predict.preprocess, give the same 28x28 input."""
    digits = mnist_split(False, data_dir, subset=24).data
    ink = pen_ink(centre_lines(digits), torch.full((24,), width * MNIST_STROKE * PEN_RES / 2))
    trained_on = frame_digits(ink)
    rng = np.random.default_rng(0)
    for i in range(len(digits)):
        top, left, bottom, right = rng.integers(5, 30, 4)
        paper = np.pad(255 - 255 * ink[i].numpy(), ((top, bottom), (left, right)), constant_values=255)
        photo = Image.fromarray(paper.astype(np.uint8)).resize((paper.shape[1] * 3, paper.shape[0] * 3))
        read = preprocess(photo)
        ours = trained_on[i, 0]
        assert (read - ours).abs().mean() < 0.03, i
        (cy1, cx1), (cy2, cx2) = (mass_centre(v[None, None]) for v in (read, ours))
        assert abs(float(cy1 - cy2)) < 0.3 and abs(float(cx1 - cx2)) < 0.3, i


def test_mnist_digits_are_already_framed_as_frame_digits_frames_them(data_dir):
    x = real_digits(data_dir)
    again = frame_digits(F.interpolate(x, scale_factor=PEN_RES, mode="nearest")[:, 0])
    cy, cx = mass_centre(again)  # ours puts the centre of mass at the field's centre, 13.5 in pixel indices
    assert (cy - 13.5).abs().max() < 0.1 and (cx - 13.5).abs().max() < 0.1
    cy, cx = mass_centre(x)  # MNIST's rounding left its digits' centres within a pixel of it (mostly below right)
    assert (cy - 13.5).abs().max() < 1.1 and (cx - 13.5).abs().max() < 1.1
    for v in (x, again):  # longer side 20 px in both
        rows, cols = (v[:, 0] > 0.25).any(2), (v[:, 0] > 0.25).any(1)
        assert (torch.maximum(rows.sum(1), cols.sum(1)).float() - DIGIT_BOX).abs().max() <= 1


def test_mnist_stroke_constant_matches_real_training_digits(data_dir):
    from evidence.userset import WORK_BOX, stroke_width

    widths = []
    for digit in mnist_split(True, data_dir, subset=300).data.numpy():
        x = digit.astype(np.float32) / 255
        rows, cols = np.nonzero(x.sum(1))[0], np.nonzero(x.sum(0))[0]
        x = x[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        scale = WORK_BOX / max(x.shape)
        size = (max(1, round(x.shape[1] * scale)), max(1, round(x.shape[0] * scale)))
        work = np.asarray(Image.fromarray(x).resize(size, Image.Resampling.BILINEAR))
        widths.append(stroke_width(work > 0.5) * DIGIT_BOX / WORK_BOX)
    assert abs(np.median(widths) - MNIST_STROKE) / MNIST_STROKE < 0.1


def test_loader_redraws_the_configured_share_and_previews_without_touching_training(data_dir):
    plain, _ = load_data(500, data_dir, subset=500, stroke_prob=0.0)
    redrawn, _ = load_data(500, data_dir, subset=500, stroke_prob=1.0)
    assert redrawn.lines is not None and plain.lines is None
    (xp, yp), (xr, yr) = next(iter(plain)), next(iter(redrawn))
    assert torch.equal(yp, yr) and not torch.equal(xp, xr)  # same order, other pens
    some, _ = load_data(100, data_dir, subset=500, stroke_prob=0.3)
    untouched, _ = load_data(100, data_dir, subset=500, stroke_prob=0.3)
    x, y, pen = some.preview(200)
    assert x.shape == (200, 1, 28, 28) and 30 < int(pen.sum()) < 90  # about 30% redrawn
    assert torch.equal(x, some.preview(200)[0])  # seeded
    for (a, la), (b, lb) in zip(some, untouched):  # looking did not change what training sees
        assert torch.equal(a, b) and torch.equal(la, lb)
