"""robustness.py: the figures a recipe is chosen on, and the ones it never is."""

import pytest
import torch

from evidence import robustness


def test_validation_figures_come_from_held_out_training_digits(model, data_dir):
    v = robustness.validation(model, 500, data_dir.parent.parent)
    assert v["holdout"] == 500 and set(v["accuracy"]) >= {"clean", "noise", "thin pen", "shifted 4 px"}
    assert all(0 <= a <= 100 for a in v["accuracy"].values())
    assert v["accuracy"]["clean"] > 95  # digits from MNIST's own training writers
    assert all(0 <= v[k] <= 100 for k in ("digits_refused", "not_digits_refused", "printed_refused", "curves_refused"))


def test_validation_curves_are_seeded_inked_pen_paths_framed_as_mnist():
    curves = robustness.validation_curves(50)
    torch.testing.assert_close(curves, robustness.validation_curves(50))
    assert curves.shape == (50, 1, 28, 28) and (curves.flatten(1).amax(1) > 0.9).all()
    extent = torch.maximum((curves[:, 0] > 0.1).any(2).sum(1), (curves[:, 0] > 0.1).any(1).sum(1))
    assert ((extent >= 15) & (extent <= 22)).all()  # framed as MNIST frames a digit


def test_validation_conditions_are_the_held_out_digits_in_every_handwriting_condition(model, data_dir):
    from datasets import validation_digits
    from evidence.userset import CONDITIONS
    from model import normalize

    x = robustness.validation_conditions(500, data_dir.parent.parent, 20)
    assert x.shape == (20 * len(CONDITIONS), 1, 28, 28) and x.min() >= 0 and x.max() <= 1
    labels = validation_digits(500, data_dir.parent.parent).targets[:20].repeat(len(CONDITIONS))
    assert (model(normalize(x)).argmax(1) == labels).float().mean() >= 0.9  # digits, read as the digit they are


@pytest.mark.slow  # several seconds: kept out of the quick loop
def test_refusal_grows_and_acceptance_falls_with_the_threshold(model, data_dir):
    rates = robustness.threshold_choice(model, 500, data_dir.parent.parent)
    assert list(rates) == [str(t) for t in robustness.THRESHOLDS]
    for key in ("digits_refused", "conditions_refused", "not_digits_refused", "printed_refused", "curves_refused"):
        values = [r[key] for r in rates.values()]
        assert values == sorted(values), key
    for key in ("drawn_even_accepted", "low_res_even_accepted"):
        values = [r[key] for r in rates.values()]
        assert values == sorted(values, reverse=True), key
    # At the model's own threshold the rates are validation's and the even hands' figures of the same model.
    from checkpoint import OWN_REJECT_BELOW

    own = rates[str(OWN_REJECT_BELOW)]
    v = robustness.validation(model, 500, data_dir.parent.parent)
    assert own["digits_refused"] == pytest.approx(v["digits_refused"])
    assert own["curves_refused"] == pytest.approx(v["curves_refused"])
    drawn = robustness.variant_digits(model)["drawn"]
    assert own["drawn_even_accepted"] == pytest.approx(sum(s["draws_even"] for s in drawn.values()) / len(drawn))


def test_printed_digits_cover_every_face_in_three_renderings(model):
    from evidence import nondigits

    if not nondigits.fonts():
        from conftest import missing

        missing("fonts", "no DejaVu or Liberation fonts: apt-get install -y fonts-dejavu-core fonts-liberation")
    out = robustness.printed_digits(model)
    assert out["faces"] == len(nondigits.fonts(limit=None)) and set(out) == {"printed", "low-res scan", "pen-redrawn",
                                                                             "faces"}
    assert all(0 <= v <= 100 for k in ("printed", "low-res scan", "pen-redrawn") for v in out[k].values())


def test_variant_digits_are_drawn_by_many_hands_framed_as_mnist_and_read(model):
    x, y, names = robustness.digit_variants()
    n = len(robustness.DIGIT_VARIANTS) * robustness.VARIANT_DRAWS
    assert names == list(robustness.DIGIT_VARIANTS) and x.shape == (n, 1, 28, 28) and y.shape == (n,)
    assert x.min() >= 0 and x.max() == 1 and (x.flatten(1).amax(1) == 1).all()  # every drawing framed, inked
    first = x[: robustness.VARIANT_DRAWS]
    assert (first - first.mean(0)).abs().amax() > 0.5  # one shape, different hands
    torch.testing.assert_close(robustness.digit_variants()[0], x)  # the same set every time
    low, _, _ = robustness.digit_variants(low_res=True)
    assert low.shape == x.shape and not torch.equal(low, x)
    out = robustness.variant_digits(model)
    assert set(out) == {"drawn", "low-res scan"} and all(set(v) == set(names) for v in out.values())
    # With a rejection model, a drawing counts only when the model reads it right and the rejector accepts it.
    from checkpoint import DEFAULT_REJECTOR, REJECT_BELOW, load_checkpoint
    from model import normalize

    rejector = load_checkpoint(DEFAULT_REJECTOR)[0]  # its verdict at the rejection model's threshold
    with torch.no_grad():
        expected = (model(normalize(x)).argmax(1) == y) & (rejector(normalize(x)).exp().amax(1) >= REJECT_BELOW)
    assert torch.equal(robustness.read_right(model, x, y, rejector), expected)
    k, n = list(robustness.DIGIT_VARIANTS).index("4, open top"), robustness.VARIANT_DRAWS
    paired = robustness.variant_digits(model, rejector)["drawn"]["4, open top"]["all"]
    assert paired == pytest.approx(100 * float(expected[k * n : (k + 1) * n].float().mean()))
    shown = out["drawn"]["4, open top"]  # the 4 MNIST's writers made most: read by a model trained on MNIST
    assert shown["all"] > 50 and shown["all"] == pytest.approx((shown["draws_even"] + shown["draws_odd_held_out"]) / 2)
