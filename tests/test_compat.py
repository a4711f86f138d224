"""The course's notebooks, replayed against our modules: what they write either works, or is refused with
the cause and the fix before any weight changes."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from torchsummary import summary

from datasets import load_data
from model import Net, model_summary
from util import EpochResult, plot_acc_loss, train
from util import test as evaluate  # a notebook's `test(...)`; under its own name pytest would collect it

ROOT = Path(__file__).resolve().parent.parent
device = torch.device("cpu")


@pytest.fixture(scope="module")
def loaders(data_dir):
    return load_data(128, data_dir, subset=1000)


@pytest.fixture
def setup():
    """A student's cell: model, optimizer, and a snapshot of both to check nothing moved."""
    torch.manual_seed(1)
    model = Net().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    return model, optimizer, weights


def untouched(model, optimizer, weights) -> bool:
    return all(torch.equal(v, weights[k]) for k, v in model.state_dict().items()) and not optimizer.state


def test_the_plain_course_idioms_work(loaders, capsys):
    train_loader, test_loader = loaders
    model = Net().to(device)
    summary(model, input_size=(1, 28, 28), device="cpu")
    model_summary(model, input_size=(1, 28, 28))
    assert capsys.readouterr().out.count("Total params: 15,248") == 2
    assert len(train_loader) == 8
    images, labels = next(iter(train_loader))
    assert images.shape == (128, 1, 28, 28) and labels.shape == (128,)
    part = DataLoader(Subset(train_loader.dataset, range(300)), batch_size=100)
    assert sum(len(y) for _, y in part) == 300
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.1)
    criterion = nn.CrossEntropyLoss()  # on log-probabilities it equals NLL
    train_losses, train_acc, test_losses, test_acc = [], [], [], []
    for _ in range(2):  # the V2 loop
        loss, acc = train(model, device, train_loader, optimizer, criterion)
        train_losses.append(loss)
        train_acc.append(acc)
        loss, acc = evaluate(model, device, test_loader, criterion)
        test_losses.append(loss)
        test_acc.append(acc)
        scheduler.step()
    assert len(plot_acc_loss(train_losses, train_acc, test_losses, test_acc).axes) == 4
    assert train_losses[-1] < train_losses[0]  # it learned


def test_criterion_defaults_to_nll(loaders, setup):
    train_loader, test_loader = loaders
    model, optimizer, _ = setup
    result = train(model, device, train_loader, optimizer)
    assert isinstance(result, EpochResult) and 0 < result.loss < 5
    assert evaluate(model, device, test_loader) == evaluate(model, device, test_loader, F.nll_loss)


def test_results_name_their_fields(loaders, setup):
    model, optimizer, _ = setup
    result = train(model, device, loaders[0], optimizer, F.nll_loss)
    assert result._fields == ("loss", "acc") and "loss=" in repr(result) and "acc=" in repr(result)
    loss, acc = result  # unpacks as (loss, acc): a notebook writing `acc, loss = ...` sees the names in repr
    assert (loss, acc) == (result.loss, result.acc) and acc > loss


@pytest.mark.parametrize("call, message", [
    ("history lists passed positionally", r"train\(\) got 2 positional argument\(s\) too many \(list, list\)"),
    ("V1: epoch in the criterion slot", r"criterion must be a loss function.*got int 1.*epoch number is not one"),
    ("criterion and optimizer swapped", r"fourth argument must be the optimizer.*got function"),
])
def test_other_conventions_are_refused_before_any_weight_changes(loaders, setup, call, message):
    model, optimizer, weights = setup
    train_loader = loaders[0]
    args = {
        "history lists passed positionally": (model, device, train_loader, optimizer, F.nll_loss, [], []),
        "V1: epoch in the criterion slot": (model, device, train_loader, optimizer, 1),
        "criterion and optimizer swapped": (model, device, train_loader, F.nll_loss, optimizer),
    }[call]
    with pytest.raises(TypeError, match=message) as info:
        train(*args)
    assert "train(model, device, train_loader, optimizer, criterion" in str(info.value)  # the call to write
    assert untouched(model, optimizer, weights)


def test_test_refuses_history_lists_and_epochs(loaders, setup):
    model, optimizer, weights = setup
    with pytest.raises(TypeError, match=r"test\(\) got 2 positional argument\(s\) too many"):
        evaluate(model, device, loaders[1], F.nll_loss, [], [])
    with pytest.raises(TypeError, match=r"criterion must be a loss function.*got int 3"):
        evaluate(model, device, loaders[1], 3)
    assert untouched(model, optimizer, weights)


def test_loader_dataset_answers_torchvisions_mnist_questions(loaders):
    dataset = loaders[0].dataset
    assert dataset.data.shape == (1000, 28, 28) and dataset.data.dtype == torch.uint8
    assert dataset.targets.shape == (1000,) and dataset.targets.dtype == torch.int64
    assert int(dataset.targets[0]) == dataset[0][1]


FAKE_DATASETS = "def load_dataset(*args, **kwargs):\n    raise NotImplementedError\n"  # Hugging Face's name


@pytest.mark.slow  # several seconds: kept out of the quick loop
def test_imports_from_outside_the_checkout_past_another_datasets_package(data_dir, tmp_path):
    site = tmp_path / "site-packages" / "datasets"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text(FAKE_DATASETS)
    notebook = f"""
import sys
sys.path.insert(0, {str(site.parent)!r})   # another `datasets` comes first, as on many notebook images
sys.path.append({str(ROOT)!r})             # the project appended, as course notebooks do
import datasets
assert datasets.__file__.startswith({str(site)!r})
import s6
assert s6.datasets.__file__ == {str(ROOT / "datasets.py")!r}
train_loader, test_loader = s6.load_data(100, {str(data_dir)!r}, subset=500)
model = s6.Net()
optimizer = __import__("torch").optim.SGD(model.parameters(), lr=0.01)
print(s6.train(model, "cpu", train_loader, optimizer))
import datasets as again
assert again is datasets                  # the other package is left as it was
try:
    import training                       # the first module on the training path that imports `datasets`
except ImportError as exc:
    print("REFUSED", exc)
"""
    result = subprocess.run([sys.executable, "-c", notebook], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "EpochResult(loss=" in result.stdout
    refused = result.stdout.split("REFUSED ", 1)[1]
    assert "not this project's datasets.py" in refused and "import s6" in refused
