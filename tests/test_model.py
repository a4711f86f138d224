import pytest
import torch
import torch.nn as nn

from model import INPUT_SHAPE, NUM_CLASSES, Net, count_parameters, model_summary

EXPECTED_PARAMETERS = 15_248  # pinned: a change to the architecture must update this on purpose


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
    assert n == EXPECTED_PARAMETERS
    assert n <= 15_700


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


def test_summary_leaves_model_untouched(capsys):
    torch.manual_seed(0)
    model = Net().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model_summary(model)
    printed = capsys.readouterr().out
    assert f"Total params: {EXPECTED_PARAMETERS:,}" in printed
    assert model.training
    after = model.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key
