"""userset.py: the handwriting conditions and photo renderings are read by the shipped model."""

import numpy as np

from userset import CONDITIONS, condition_accuracy


def test_handwriting_conditions_are_read(model, digits):
    images, labels = digits
    report = condition_accuracy(model, images, labels)
    assert list(report) == list(CONDITIONS) and all(r["n"] == 40 for r in report.values())
    accs = [r["accuracy"] for r in report.values()]
    assert min(accs) >= 85 and sum(accs) / len(accs) >= 95  # results/robustness.json has the 1000-digit figures


def test_conditions_are_seeded(digits):
    rng = lambda: np.random.default_rng([0, 3])  # noqa: E731
    for render in CONDITIONS.values():
        a, b = render(digits[0][0], rng()), render(digits[0][0], rng())
        assert np.array_equal(np.asarray(a), np.asarray(b))
