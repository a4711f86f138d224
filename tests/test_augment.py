"""The generic augmentations, the generated non-digits and their loss, and the per-image input normalisation."""

import math

import pytest
import torch
import torch.nn.functional as F

import augment
from config import AUGMENTATION, TrainConfig
from datasets import load_data
from model import Net
from training import not_digit_loss, training_criterion


@pytest.fixture(scope="module")
def x(digits):
    return torch.from_numpy(digits[0][:32]).float().div(255).unsqueeze(1)


def test_shift_moves_a_digit_by_whole_pixels(x):
    zero, one = torch.zeros(len(x)), torch.ones(len(x))
    moved = augment.warp(x, zero, one, torch.tensor([[2.0, -1.0]]).expand(len(x), 2))
    torch.testing.assert_close(moved[..., :27, 2:], x[..., 1:, :26], atol=1e-5, rtol=0)  # right 2, up 1


def test_noise_and_erasing_keep_pixels_in_range_and_are_seeded(x):
    for f in (lambda g: augment.add_noise(x, 0.5, g), lambda g: augment.erase(x, 1.0, g)):
        a, b = f(torch.Generator().manual_seed(1)), f(torch.Generator().manual_seed(1))
        torch.testing.assert_close(a, b)
        assert a.min() >= 0 and a.max() <= 1 and (a != x).any()
    untouched = augment.erase(x, 0.0, torch.Generator().manual_seed(1))
    torch.testing.assert_close(untouched, x)


def test_generated_non_digits_are_framed_like_mnist_digits(x):
    others = augment.not_digits(x, 40, torch.Generator().manual_seed(0))
    assert others.shape == (40, 1, 28, 28) and others.min() >= 0 and others.max() <= 1
    ink = others[:, 0] > 0.1
    rows, cols = ink.any(2), ink.any(1)
    extent = torch.maximum(rows.sum(1), cols.sum(1))
    assert (extent <= 22).all() and (extent >= 15).float().mean() > 0.9  # longer side ~20 px, as MNIST frames


def test_hand_letters_draw_every_skeleton_and_a_zero_share_draws_nothing_new(x):
    g = torch.Generator().manual_seed(0)
    letters = augment.hand_letters(200, g, "cpu")
    assert letters.shape == (200, 1, 28, 28) and letters.min() >= 0 and letters.max() <= 1
    assert (letters.flatten(1).amax(1) > 0.9).all()  # every one has ink
    keep = torch.arange(200) % 3 == 0  # drawing only some: the same glyphs there, blank elsewhere, same stream after
    g, g_kept = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    full, kept = augment.hand_letters(200, g, "cpu"), augment.hand_letters(200, g_kept, "cpu", keep=keep)
    assert torch.equal(kept[keep], full[keep]) and not kept[~keep].any()
    assert torch.equal(torch.rand(4, generator=g), torch.rand(4, generator=g_kept))
    table, present = augment._skeleton_table()
    assert present.sum(1).tolist() == [len(strokes) for strokes in augment.SKELETONS.values()]
    plain = augment.not_digits(x, 40, torch.Generator().manual_seed(3))
    torch.testing.assert_close(augment.not_digits(x, 40, torch.Generator().manual_seed(3), letters=0.0), plain)
    mixed = augment.not_digits(x, 40, torch.Generator().manual_seed(3), letters=1.0)
    assert not torch.equal(mixed, plain) and mixed.shape == plain.shape


def test_printed_letters_come_from_faces_the_evaluation_never_uses_and_a_zero_share_draws_nothing_new(x):
    from evidence import nondigits

    evaluated = {p.stem for p in nondigits.fonts(limit=None)}
    assert not set(augment.TRAIN_FACES) & (set(augment.VALIDATION_FACES) | evaluated)
    bank = augment.font_glyphs()
    assert len(bank) > 4 * len(augment.FONT_CHARS) and (bank.flatten(1).amax(1) > 0.9).all()  # every glyph inked
    extent = torch.maximum((bank[:, 0] > 0.1).any(2).sum(1), (bank[:, 0] > 0.1).any(1).sum(1))
    assert ((extent >= 15) & (extent <= 22)).all()  # framed as MNIST frames a digit
    assert nondigits.NEVER_TRAINED and not set(nondigits.NEVER_TRAINED) & set(augment.FONT_CHARS)
    assert not set(augment.FONT_CHARS) & set("OoIilSsZzBbGgq0123456789")  # digits in some hands are never refused
    printed = augment.printed_letters(60, torch.Generator().manual_seed(0), "cpu")
    assert printed.shape == (60, 1, 28, 28) and printed.min() >= 0 and printed.max() <= 1
    plain = augment.not_digits(x, 40, torch.Generator().manual_seed(3))
    torch.testing.assert_close(augment.not_digits(x, 40, torch.Generator().manual_seed(3), printed=0.0), plain)
    mixed = augment.not_digits(x, 40, torch.Generator().manual_seed(3), printed=1.0)
    assert not torch.equal(mixed, plain) and mixed.shape == plain.shape


def test_curved_scribbles_pass_through_their_points_and_a_zero_share_draws_nothing_new(x):
    points = torch.tensor([[[4.0, 4.0], [20.0, 6.0], [12.0, 22.0], [6.0, 12.0]]])
    curve = augment.smooth_path(points, steps=6)
    assert curve.shape == (1, 19, 2)
    torch.testing.assert_close(curve[0, ::6], points[0])  # a spline through the points, not near them
    turns = lambda p: F.normalize(p[:, 1:] - p[:, :-1], dim=-1)  # noqa: E731
    assert (turns(curve)[:, 1:] * turns(curve)[:, :-1]).sum(-1).min() > 0.5  # < 60° a step; the polyline turns 109°
    plain = augment.not_digits(x, 40, torch.Generator().manual_seed(3))
    torch.testing.assert_close(augment.not_digits(x, 40, torch.Generator().manual_seed(3), curves=0.0), plain)
    curved = augment.not_digits(x, 40, torch.Generator().manual_seed(3), curves=1.0)
    kind = torch.arange(40) % 4
    assert not torch.equal(curved[kind == 0], plain[kind == 0]) and curved.shape == plain.shape


def test_printed_digits_keep_their_label_and_a_zero_share_changes_nothing(x, digits, model):
    from model import normalize

    assert len(augment.font_glyphs(augment.TRAIN_FACES, augment.DIGITS)) == 10 * len(augment.TRAIN_FACES)
    labels = torch.from_numpy(digits[1][:32])
    torch.testing.assert_close(augment.printed_digits(x, labels, 0.0, torch.Generator().manual_seed(0)), x)
    printed = augment.printed_digits(x, labels, 1.0, torch.Generator().manual_seed(0))
    assert printed.shape == x.shape and ((printed - x).flatten(1).abs().amax(1) > 0.5).all()  # every one replaced
    read = model(normalize(printed)).argmax(1)
    assert (read == labels).float().mean() >= 0.9  # the shipped model reads them as the digit they replaced


def test_low_res_softens_the_chosen_images_and_keeps_their_ink_where_it_was(x):
    soft = augment.low_res(x, 1.0, torch.Generator().manual_seed(0))
    assert soft.shape == x.shape and soft.min() >= 0 and soft.max() <= 1
    changed = (soft - x).flatten(1).abs().amax(1)
    assert (changed > 0.2).all()  # every image lost its sharp edges
    centre = lambda t: (t[:, 0].sum(1) * torch.arange(28.0)).sum(1) / t[:, 0].sum((1, 2))  # noqa: E731
    assert (centre(soft) - centre(x)).abs().max() < 1.0  # softened in place, not moved
    torch.testing.assert_close(augment.low_res(x, 0.0, torch.Generator().manual_seed(0)), x)


def test_loader_appends_non_digits_with_their_label_and_levers_at_zero_change_nothing(data_dir):
    cfg = TrainConfig(subset=512, batch_size=64, not_digits=0.25)
    train, _ = load_data(**cfg.loader_args())
    data, target = next(iter(train))
    assert data.shape[0] == 80 and (target[64:] == augment.NOT_A_DIGIT_LABEL).all() and (target[:64] >= 0).all()
    off = dict.fromkeys(AUGMENTATION, 0)
    plain, _ = load_data(64, data_dir, subset=512, stroke_prob=0.0)
    same, _ = load_data(64, data_dir, subset=512, **off)
    for (a, ya), (b, yb) in zip(plain, same):
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(ya, yb)


def test_not_digit_loss_is_nll_plus_the_distance_from_uniform():
    logp = torch.log_softmax(torch.randn(6, 10), 1)
    target = torch.tensor([3, 1, augment.NOT_A_DIGIT_LABEL, 7, augment.NOT_A_DIGIT_LABEL, 0])
    digits = target != augment.NOT_A_DIGIT_LABEL
    expected = F.nll_loss(logp[digits], target[digits]) - 0.5 * logp[~digits].mean()
    torch.testing.assert_close(not_digit_loss(logp, target, weight=0.5), expected)
    uniform = torch.full((1, 10), -math.log(10))
    assert math.isclose(float(not_digit_loss(torch.cat([logp[:1], uniform]),
                                             torch.tensor([3, augment.NOT_A_DIGIT_LABEL]), weight=1.0)),
                        float(F.nll_loss(logp[:1], torch.tensor([3]))) + math.log(10), rel_tol=1e-6)
    assert F.nll_loss(logp, target.clamp(min=0)).isfinite()  # the plain criterion of the course still works
    assert training_criterion(TrainConfig(not_digits=0)) is F.nll_loss


def test_minmax_input_norm_ignores_brightness_and_contrast(x):
    torch.manual_seed(0)
    model = Net(input_norm="minmax").eval()
    normalised = (x - 0.1307) / 0.3081
    dim_on_grey = ((0.4 * x + 0.5) - 0.1307) / 0.3081
    torch.testing.assert_close(model(normalised), model(dim_on_grey), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="unknown input_norm 'max': choose one of none, minmax"):
        Net(input_norm="max")


def test_validation_perturbations_are_seeded_and_keep_the_shape(x):
    a, b = augment.validation_perturbations(x, 0), augment.validation_perturbations(x, 0)
    assert set(a) == set(b) and all(v.shape == x.shape for v in a.values())
    for name in a:
        torch.testing.assert_close(a[name], b[name])
