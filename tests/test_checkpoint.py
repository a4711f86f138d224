"""checkpoint.py: weights-only files that rebuild their size, refuse foreign, broken or non-finite weights."""

import json
import os

import pytest
import torch
from conftest import payload_of

from checkpoint import DEFAULT_CHECKPOINT, DEFAULT_REJECTOR, FORMAT, load_checkpoint, save_checkpoint
from config import TrainConfig
from model import INPUT_SHAPE, SIZES, Net, count_parameters


def test_checkpoints_rebuild_whichever_size_they_hold(tmp_path):
    for size in SIZES:
        torch.manual_seed(0)
        model = Net(size).eval()
        save_checkpoint(tmp_path / f"{size}.pt", model, TrainConfig(model=size), {"test_acc": [50.0]})
        loaded, payload = load_checkpoint(tmp_path / f"{size}.pt")
        assert loaded.size == size == payload["model"] and payload["parameters"] == count_parameters(model)
        assert payload["format"] == FORMAT and payload["config"]["model"] == size
        x = torch.randn(4, *INPUT_SHAPE)
        torch.testing.assert_close(loaded(x), model(x))
    assert not list(tmp_path.glob("*.tmp"))  # written atomically


@pytest.mark.parametrize("path, group, parameters", [(DEFAULT_CHECKPOINT, "recipe", 15_248),
                                                    (DEFAULT_REJECTOR, "reject", 59_872)])
def test_shipped_checkpoints_are_weights_only_and_described(path, group, parameters):
    payload = torch.load(path, weights_only=True)
    assert payload["arch"] == "Net" and payload["parameters"] == parameters and payload["format"] == FORMAT
    # Each is the seed-0 run of a five-seed sweep (the default recipe, the rejection model), whose result file
    # describes it.
    described = json.loads((path.parent.parent / "results" / group / "seed0.json").read_text())
    assert payload["history"]["test_acc"] == described["history"]["test_acc"]
    # The file keeps the config as it was written: a lever removed since (held off), none of the later fields.
    recorded, today = payload["config"], described["config"]
    assert all(today[k] == v for k, v in recorded.items() if k in today and k != "data_dir")
    assert all(not v for k, v in recorded.items() if k not in today)
    assert path.stat().st_size < 4 * parameters + 30_000  # float32 weights and a little metadata, nothing more


def test_missing_foreign_and_mismatched_files_get_a_clear_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "random.pt").write_bytes(os.urandom(4096))
    for name in ("junk.pt", "random.pt"):
        with pytest.raises(ValueError) as info:
            load_checkpoint(tmp_path / name)
        assert "not a checkpoint written by this project" in str(info.value)
        assert "weights_only=False unless you trust" in str(info.value)  # a warning, not torch's invitation
    other = torch.nn.Sequential(torch.nn.Conv2d(1, 32, 3), torch.nn.Flatten(), torch.nn.LazyLinear(10))
    other(torch.zeros(1, 1, 28, 28))
    torch.save({"arch": "Sequential", "state_dict": other.state_dict()}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="another architecture"):
        load_checkpoint(tmp_path / "other.pt")
    state = Net().state_dict()
    state["stem.0.weight"] = torch.zeros(32, 1, 3, 3)
    torch.save(payload_of(Net(), state_dict=state), tmp_path / "wide.pt")
    with pytest.raises(ValueError, match="do not fit Net.*stem.0.weight"):
        load_checkpoint(tmp_path / "wide.pt")
    state["stem.0.weight"] = "not a tensor"
    torch.save(payload_of(Net(), state_dict=state), tmp_path / "odd.pt")
    with pytest.raises(ValueError, match="no 'state_dict' of tensors"):
        load_checkpoint(tmp_path / "odd.pt")
    torch.save(payload_of(Net(), format=FORMAT + 1), tmp_path / "future.pt")
    with pytest.raises(ValueError, match=f"format {FORMAT + 1}, this code reads format {FORMAT}"):
        load_checkpoint(tmp_path / "future.pt")


def test_non_finite_weights_are_neither_saved_nor_loaded(tmp_path):
    model = Net()
    with torch.no_grad():
        model.head[0].weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite"):
        save_checkpoint(tmp_path / "nan.pt", model, TrainConfig(), {})
    assert not (tmp_path / "nan.pt").exists()
    torch.save(payload_of(model), tmp_path / "nan.pt")
    with pytest.raises(ValueError, match="non-finite weights.*head.0.weight"):
        load_checkpoint(tmp_path / "nan.pt")
