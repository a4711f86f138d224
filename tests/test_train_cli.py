import json

import pytest
import torch

import train
from datasets import load_data
from model import Net
from util import load_checkpoint, predictions


def test_train_py_writes_checkpoint_history_and_figures(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    acc = train.main(["--epochs", "2", "--subset", "2000", "--data-dir", str(data_dir), "--out", str(out)])
    printed = capsys.readouterr().out
    assert "epoch  2 | train loss" in printed and "final test accuracy" in printed
    run = json.loads((out / "history.json").read_text())
    assert run["history"]["epoch"] == [1, 2] and run["history"]["test_acc"][-1] == acc
    assert run["config"]["epochs"] == 2 and run["parameters"] == 15_248
    for name in ("curves.png", "confusion.png", "errors.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert not list(out.glob("*.tmp"))
    # the checkpoint loads weights-only and reproduces the reported accuracy
    payload = torch.load(out / "checkpoint.pt", weights_only=True)
    assert payload["config"]["seed"] == 0 and payload["history"]["test_acc"][-1] == acc
    model, _ = load_checkpoint(out / "checkpoint.pt")
    _, test_loader = load_data(100, data_dir, subset=2000)
    _, labels, probs = predictions(model, torch.device("cpu"), test_loader)
    assert 100 * int((probs.argmax(1) == labels).sum()) / len(labels) == acc


def test_bad_flags_are_rejected(capsys):
    with pytest.raises(SystemExit):
        train.main(["--epochs", "0"])
    assert "--epochs must be a positive integer" in capsys.readouterr().err


def test_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a checkpoint written by this project"):
        load_checkpoint(tmp_path / "junk.pt")
    other = torch.nn.Sequential(torch.nn.Conv2d(1, 32, 3), torch.nn.Flatten(), torch.nn.LazyLinear(10))
    other(torch.zeros(1, 1, 28, 28))
    torch.save({"arch": "Sequential", "state_dict": other.state_dict()}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="another architecture"):
        load_checkpoint(tmp_path / "other.pt")
    wide = Net()
    state = wide.state_dict()
    state["stem.0.weight"] = torch.zeros(32, 1, 3, 3)
    torch.save({"arch": "Net", "state_dict": state}, tmp_path / "wide.pt")
    with pytest.raises(ValueError, match="stem.0.weight"):
        load_checkpoint(tmp_path / "wide.pt")
