"""model.py: output, pinned parameter counts within budget, the architecture's parts, clear input errors."""

import pytest
import torch
import torch.nn as nn

from model import DEFAULT_SIZE, INPUT_SHAPE, NUM_CLASSES, SIZES, Net, count_parameters, model_summary

EXPECTED_PARAMETERS = 15_248  # pinned: a change to the architecture must update this on purpose
PINNED = {"15k": 15_248, "8k": 7_798, "4k": 3_952, "60k": 59_872}  # every size, pinned the same way
BUDGET = {"15k": 15_700, "8k": 8_000, "4k": 4_000, "60k": 60_000}  # each size's parameter limit


@pytest.mark.parametrize("batch", [1, 2, 64])
@pytest.mark.parametrize("train_mode", [True, False])
def test_output_is_log_probabilities(batch, train_mode):
    torch.manual_seed(0)
    model = Net().train(train_mode)
    out = model(torch.randn(batch, *INPUT_SHAPE))
    assert out.shape == (batch, NUM_CLASSES)
    assert out.dtype == torch.float32
    assert (out <= 0).all()
    torch.testing.assert_close(out.exp().sum(1), torch.ones(batch))


def test_parameter_count_is_pinned_and_within_budget():
    n = count_parameters(Net())
    assert n == EXPECTED_PARAMETERS == PINNED[DEFAULT_SIZE]
    assert set(SIZES) == set(PINNED)
    for size, expected in PINNED.items():
        model = Net(size)
        assert count_parameters(model) == expected <= BUDGET[size], size
        out = model(torch.randn(3, *INPUT_SHAPE))
        assert out.shape == (3, NUM_CLASSES)


def test_unknown_size_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown model size '9k': choose one of 15k, 8k, 4k, 60k"):
        Net("9k")


def test_has_batchnorm_dropout_and_global_average_pooling():
    kinds = [type(m) for m in Net().modules()]
    assert nn.BatchNorm2d in kinds
    assert any(issubclass(k, nn.modules.dropout._DropoutNd) for k in kinds)
    assert nn.AdaptiveAvgPool2d in kinds
    assert not any(k is nn.Linear for k in kinds)  # the classifier is the 1x1 conv + GAP


@pytest.mark.parametrize("shape", [(1, 28, 28), (2, 3, 28, 28), (2, 1, 32, 32), (28, 28)])
def test_bad_input_shape_raises_clear_error(shape):
    with pytest.raises(ValueError, match=r"expects a float batch of shape \(N, 1, 28, 28\)"):
        Net()(torch.randn(*shape))


def test_uint8_batch_error_says_how_to_convert():
    with pytest.raises(TypeError, match=r"got dtype torch.uint8.*x.float\(\) / 255"):
        Net()(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))


def test_summary_leaves_model_untouched(capsys):
    torch.manual_seed(0)
    model = Net().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model_summary(model)
    model_summary(model, input_size=(1, 28, 28))  # torchsummary's keyword, as course notebooks write it
    printed = capsys.readouterr().out
    assert printed.count(f"Total params: {EXPECTED_PARAMETERS:,}") == 2
    assert model.training
    after = model.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key
