"""MNIST-C as regenerated here: each corruption against the published definition, on real test digits."""

import numpy as np
import pytest

from evidence import mnist_c

skimage = pytest.importorskip("skimage", reason="the MNIST-C generator needs scikit-image (requirements-dev.txt)")
from skimage import color, feature, filters, transform  # noqa: E402


@pytest.fixture(scope="module")
def x(digits):
    return digits[0][:6].astype(np.float64) / 255


def published_warp(image, aff):
    """The published geometric corruptions: skimage's warp with the inverse map `aff`."""
    return np.clip(transform.warp(image, inverse_map=aff), 0, 1) * 255


def keep_centre(**kw):
    """The published construction: the transform, then the translation that keeps (13.5, 13.5) fixed."""
    a = transform.AffineTransform(**kw).params
    t = [13.5 * (1 - a[0, 0] - a[0, 1]), 13.5 * (1 - a[1, 0] - a[1, 1])]
    return transform.AffineTransform(**kw, translation=t)


def test_geometric_corruptions_match_skimages_warp(x):
    for kw in ({"rotation": 0.4}, {"rotation": -0.4}, {"scale": (1 / 0.7, 1 / 0.7)}):
        ours = mnist_c.affine_warp(x, keep_centre(**kw).params)
        expected = np.stack([published_warp(image, keep_centre(**kw)) / 255 for image in x])
        np.testing.assert_allclose(ours, expected, atol=1e-6)
    moved = mnist_c.affine_warp(x, transform.AffineTransform(translation=(3, -3)).params)
    np.testing.assert_allclose(moved, [published_warp(i, transform.AffineTransform(translation=(3, -3))) / 255
                                       for i in x], atol=1e-6)
    # Shear as skimage defined AffineTransform(shear=s) when MNIST-C was made: [[1, -sin s], [0, cos s]].
    sheared = mnist_c.shear(x, np.random.default_rng(0)) / 255
    for image, out in zip(x, sheared):
        candidates = [published_warp(image, transform.AffineTransform(matrix=mnist_c.centred(
            np.array([[1, -np.sin(s)], [0, np.cos(s)]])))) / 255 for s in (0.4, -0.4)]
        assert min(np.abs(out - c).max() for c in candidates) < 1e-6


def test_pixel_corruptions_match_the_published_formulas(x):
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(mnist_c.stripe(x, rng)[:, :, 7:21], x[:, :, 7:21] * 255)
    np.testing.assert_allclose(mnist_c.stripe(x, rng)[:, :, :7], 255 - x[:, :, :7] * 255)
    hsv = [color.rgb2hsv(color.gray2rgb(image)) for image in x]  # the published route through HSV
    for h in hsv:
        h[:, :, 2] = np.clip(h[:, :, 2] + 0.5, 0, 1)
    bright = np.stack([color.rgb2gray(color.hsv2rgb(h)) for h in hsv]) * 255
    np.testing.assert_allclose(mnist_c.brightness(x, rng), bright, atol=1e-6)
    np.testing.assert_array_equal(mnist_c.canny_edges(x, rng), np.stack([feature.canny(i) for i in x]) * 255.0)
    # glass blur's blurs: gaussian(multichannel=True) on a 2-D image blurs along the rows axis only.
    np.testing.assert_allclose(mnist_c._gaussian(x, 0.7, columns=False),
                               np.stack([filters.gaussian(i, sigma=0.7, channel_axis=-1) for i in x]), atol=1e-12)


def test_noise_corruptions_have_the_published_strengths(digits):
    x = digits[0][:100].astype(np.float64) / 255
    shot = mnist_c.shot_noise(x, np.random.default_rng(0)) / 255
    np.testing.assert_allclose(shot * 3, np.round(shot * 3), atol=1e-9)  # Poisson counts at 3 photons per unit
    impulse = mnist_c.impulse_noise(x, np.random.default_rng(0)) / 255
    changed = impulse != x
    flipped = np.isin(impulse, (0.0, 1.0)) & changed
    assert (changed == flipped).all()  # only salt and pepper
    assert abs(changed.mean() / (1 - np.isin(x, (0.0, 1.0)).mean() * 0.5) - 0.17) < 0.02


def test_fog_adds_the_plasma_fractal_and_keeps_the_digits_maximum(x):
    fogged = mnist_c.fog(x, np.random.default_rng(7)) / 255
    plasma = mnist_c.plasma_fractal(len(x), np.random.default_rng(7), wibbledecay=1.4)
    assert plasma.shape == (len(x), 256, 256) and plasma.min() == 0 and plasma.max() == 1
    top = x.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(fogged, np.clip((x + 3 * plasma[:, :28, :28]) * top / (top + 3), 0, 1), atol=1e-12)


def test_motion_blur_is_imagemagicks_one_sided_kernel():
    k = mnist_c.motion_kernel(10, 3)
    assert len(k) == 21 and np.isclose(k.sum(), 1) and (np.diff(k) < 0).all()
    np.testing.assert_allclose(k[1] / k[0], np.exp(-1 / 18))
    cols, rows = mnist_c.motion_offsets(21, 0.0)
    assert (cols == np.arange(21)).all() and (rows == 0).all()  # angle 0: a trail along the row
    cols, rows = mnist_c.motion_offsets(21, 45.0)
    assert (cols == rows).all() and cols[-1] == 14


def test_lines_follow_the_published_profile():
    line = mnist_c.line_from_points(0, 10, 27, 10)
    assert (line[10, :27] == 1).all() and line[10, 27] == 0  # columns from floor(c0) up to, not including, ceil(c1)
    assert np.allclose(line[11, :27], np.log(1 - 1 / 2.3) + 1) and (line[14] == 0).all()
    dotted = mnist_c.dotted_line(np.zeros((1, 28, 28)), np.random.default_rng(0))[0]
    assert dotted[:, 0:2].max() == 0 and dotted[:, 4:6].max() == 0 and dotted[:, 2:4].max() > 0
    cs, rs = mnist_c.zigzag_points(10, 10)
    assert cs[0] == 2 and np.isclose(cs[-1], 25) and np.allclose(rs[1:-1:2], 12) and np.allclose(rs[2:-1:2], 8)


def test_corrupt_is_seeded_uint8_and_names_unknown_corruptions(digits):
    a = mnist_c.corrupt(digits[0][:5], "zigzag", seed=3)
    assert a.dtype == np.uint8 and a.shape == (5, 28, 28)
    np.testing.assert_array_equal(a, mnist_c.corrupt(digits[0][:5], "zigzag", seed=3))
    assert (a != mnist_c.corrupt(digits[0][:5], "zigzag", seed=4)).any()
    with pytest.raises(ValueError, match="unknown corruption 'fgo': choose one of shot_noise"):
        mnist_c.corrupt(digits[0][:5], "fgo")


def test_clean_accuracy_is_the_models_own_test_accuracy(model, data_dir):
    from checkpoint import DEFAULT_CHECKPOINT, load_checkpoint

    images, labels = mnist_c.test_digits(data_dir.parent.parent)
    history = load_checkpoint(DEFAULT_CHECKPOINT)[1]["history"]
    assert abs(mnist_c.accuracy(model, images, labels) - history["test_acc"][-1]) < 0.005
