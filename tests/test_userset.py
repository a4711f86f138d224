"""userset.py: the handwriting conditions and photo renderings are read by the shipped model."""

import numpy as np

from evidence.userset import CONDITIONS, condition_accuracy


def test_handwriting_conditions_are_read(model, digits):
    images, labels = digits
    report = condition_accuracy(model, images, labels)
    assert list(report) == list(CONDITIONS) and all(r["n"] == 40 for r in report.values())
    accs = [r["accuracy"] for r in report.values()]
    assert min(accs) >= 85 and sum(accs) / len(accs) >= 95  # results/robustness.json has the 1000-digit figures


def test_a_missing_model_file_is_named_without_a_traceback(tmp_path, capsys):
    import pytest

    from evidence import userset

    with pytest.raises(SystemExit) as exit_:
        userset.main(["--rejector", str(tmp_path / "gone.pt")])
    assert exit_.value.code == 2 and "gone.pt does not exist" in capsys.readouterr().err


def test_conditions_are_seeded(digits):
    rng = lambda: np.random.default_rng([0, 3])  # noqa: E731
    for render in CONDITIONS.values():
        a, b = render(digits[0][0], rng()), render(digits[0][0], rng())
        assert np.array_equal(np.asarray(a), np.asarray(b))
