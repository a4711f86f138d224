"""robustness.py: the figures a recipe is chosen on, and the ones it never is."""

import robustness


def test_validation_figures_come_from_held_out_training_digits(model, data_dir):
    v = robustness.validation(model, 500, data_dir.parent.parent)
    assert v["holdout"] == 500 and set(v["accuracy"]) >= {"clean", "noise", "thin pen", "shifted 4 px"}
    assert all(0 <= a <= 100 for a in v["accuracy"].values())
    assert v["accuracy"]["clean"] > 95  # digits from MNIST's own training writers
    assert 0 <= v["digits_refused"] <= 100 and 0 <= v["not_digits_refused"] <= 100


def test_refusal_grows_with_the_threshold(model, data_dir):
    rates = robustness.threshold_choice(model, 500, data_dir.parent.parent)
    assert list(rates) == [str(t) for t in robustness.THRESHOLDS]
    for key in ("digits_refused", "not_digits_refused"):
        values = [r[key] for r in rates.values()]
        assert values == sorted(values), key


def test_printed_digits_cover_every_face_in_three_renderings(model):
    import nondigits

    if not nondigits.fonts():
        from conftest import missing

        missing("fonts", "no DejaVu or Liberation fonts: apt-get install -y fonts-dejavu-core fonts-liberation")
    out = robustness.printed_digits(model)
    assert out["faces"] == len(nondigits.fonts(limit=None)) and set(out) == {"printed", "low-res scan", "pen-redrawn",
                                                                             "faces"}
    assert all(0 <= v <= 100 for k in ("printed", "low-res scan", "pen-redrawn") for v in out[k].values())
