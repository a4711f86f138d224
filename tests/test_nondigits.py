"""The not-a-digit evaluation set and the verdict that predict.py, the app and the API share."""

import json

import pytest
import torch

import checkpoint
import predict
from evidence import nondigits


@pytest.fixture(scope="module")
def evaluation(data_dir):
    from datasets import mnist_split

    if not nondigits.fonts():
        from conftest import missing

        missing("fonts", "no DejaVu or Liberation fonts: apt-get install -y fonts-dejavu-core fonts-liberation")
    return nondigits.evaluation_set(mnist_split(False, data_dir).data)


def test_evaluation_set_has_every_kind_framed_as_mnist(evaluation):
    assert set(evaluation) == {"letters (fonts)", "symbols (fonts)", "letters (pen)", "scribbles", "blobs",
                               "two digits"}
    for kind, x in evaluation.items():
        assert x.dim() == 4 and x.shape[1:] == (1, 28, 28) and len(x) >= 100, kind
        assert x.min() >= 0 and x.max() <= 1 and (x.amax((1, 2, 3)) > 0.5).all(), kind  # every image has ink
    assert len(evaluation["letters (fonts)"]) == len(nondigits.LETTERS) * len(nondigits.fonts())
    assert not set(nondigits.LETTERS) & set("OoIilSsZzBbGgq")  # digits in some hands are not in the set


@pytest.mark.slow  # several seconds: kept out of the quick loop
def test_refusal_rates_use_the_shared_verdict(model, data_dir, evaluation):
    from datasets import mnist_split

    test = mnist_split(False, data_dir, subset=500)
    top = nondigits.top_probability(model, test.data.unsqueeze(1).float() / 255)
    for below in (checkpoint.OWN_REJECT_BELOW, checkpoint.REJECT_BELOW, 0.99):
        rates = nondigits.refusal_rates(model, test.data, below)
        assert set(rates["non_digits_refused"]) == set(evaluation) and rates["reject_below"] == below
        assert all(0 <= r <= 100 for r in rates["non_digits_refused"].values())
        assert rates["mnist_test_refused"] == pytest.approx(100 * float((top < below).float().mean()))
    assert rates["mnist_test_refused"] > 0  # a threshold near 1 refuses digits too: the threshold is the one given


def test_predict_prints_and_json_carries_the_verdict(model, tmp_path, capsys):
    from PIL import Image

    letter = nondigits.render("A", nondigits.fonts()[0]) if nondigits.fonts() else None
    bar = Image.new("L", (100, 100), 255)
    bar.paste(0, (45, 10, 55, 90))
    images = {"bar.png": bar, **({"letter.png": letter} if letter else {})}
    for name, img in images.items():
        img.save(tmp_path / name)
    assert predict.main([str(tmp_path), "--json"]) == 0
    answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for a in answers:
        assert a["is_digit"] == (a["verdict_probability"] >= checkpoint.REJECT_BELOW)  # the shipped rejection model's
        assert a["verdict"] == (str(a["digit"]) if a["is_digit"] else predict.NOT_A_DIGIT_TEXT)
    assert predict.main([str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    for a, line in zip(answers, lines):
        assert (predict.NOT_A_DIGIT_TEXT in line) == (not a["is_digit"]), line
    tops = torch.tensor([0.2, 0.55, 0.9])
    assert checkpoint.is_digit(tops, checkpoint.REJECT_BELOW).tolist() == [False, False, True]
    assert checkpoint.is_digit(tops, checkpoint.OWN_REJECT_BELOW).tolist() == [False, True, True]
