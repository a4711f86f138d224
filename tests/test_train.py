"""train.py: what a run writes, and that bad flags, bad data and bad folders fail before training, in one line."""

import json

import pytest
import torch
from conftest import copy_mnist

import train
from checkpoint import load_checkpoint
from datasets import FILES, load_data
from util import predictions

TINY = ["--epochs", "1", "--subset", "1500"]  # 12 steps on real images: enough for the one-cycle schedule


def test_train_py_writes_checkpoint_history_and_figures(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    acc = train.main(["--epochs", "2", "--subset", "2000", "--data-dir", str(data_dir), "--out", str(out)])
    printed = capsys.readouterr().out
    assert f"data: {data_dir}" in printed  # the resolved folder, not the flag's None
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


def test_torchvision_pipeline_runs_without_redrawn_strokes_and_says_so(data_dir, tmp_path, capsys):
    out = tmp_path / "tv"
    train.main([*TINY, "--pipeline", "torchvision", "--data-dir", str(data_dir), "--out", str(out)])
    note = capsys.readouterr().err
    # the default's fast-only levers
    assert "--stroke-prob, --shift, --elastic, --noise, --erase are 0 for this run" in note
    assert json.loads((out / "history.json").read_text())["config"]["stroke_prob"] == 0
    with pytest.raises(SystemExit):
        train.main([*TINY, "--pipeline", "torchvision", "--stroke-prob", "0.5", "--out", str(tmp_path / "x")])
    assert "--stroke-prob must be 0 with pipeline 'torchvision'" in capsys.readouterr().err


@pytest.mark.slow  # several seconds: kept out of the quick loop
def test_diverging_run_stops_keeps_the_last_good_checkpoint_and_fails(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    train.main([*TINY, "--data-dir", str(data_dir), "--out", str(out)])
    good = (out / "checkpoint.pt").read_bytes()
    with pytest.raises(SystemExit) as info:
        train.main([*TINY, "--lr", "1e6", "--data-dir", str(data_dir), "--out", str(out), "--force"])
    assert info.value.code == 1
    assert "training diverged" in capsys.readouterr().err
    assert (out / "checkpoint.pt").read_bytes() == good  # epoch 1 never completed: the old checkpoint stays
    json.loads((out / "history.json").read_text())  # still valid JSON


@pytest.mark.slow  # several seconds: kept out of the quick loop
def test_runs_never_replace_an_earlier_run(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    flags = [*TINY, "--data-dir", str(data_dir)]
    train.main(flags)
    train.main(flags)
    printed = capsys.readouterr().out
    assert "writing to runs/15k-seed0/" in printed and "writing to runs/15k-seed0-2/" in printed
    first = (tmp_path / "runs" / "15k-seed0" / "checkpoint.pt").read_bytes()
    with pytest.raises(SystemExit):
        train.main([*flags, "--out", "runs/15k-seed0"])
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--force" in err
    assert (tmp_path / "runs" / "15k-seed0" / "checkpoint.pt").read_bytes() == first


def test_expected_errors_are_one_line_and_leave_no_empty_run_folder(data_dir, tmp_path, monkeypatch, capsys):
    swapped = copy_mnist(data_dir, tmp_path / "swapped" / "MNIST" / "raw", {
        "train-labels-idx1-ubyte": "t10k-labels-idx1-ubyte", "t10k-labels-idx1-ubyte": "train-labels-idx1-ubyte"})
    assert sorted(p.name for p in swapped.iterdir()) == sorted(FILES)
    cases = {
        "MNIST files not found": ["--data-dir", str(tmp_path / "nowhere")],
        "at least 10 steps": ["--epochs", "1", "--subset", "100", "--data-dir", str(data_dir)],
        "files look swapped": [*TINY, "--data-dir", str(tmp_path / "swapped")],
    }
    monkeypatch.chdir(tmp_path)
    for message, flags in cases.items():
        with pytest.raises(SystemExit) as info:
            train.main(flags)  # the default folder, runs/15k-seed0, is created and then removed
        err = capsys.readouterr().err
        assert info.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err
        assert not (tmp_path / "runs" / "15k-seed0").exists(), message
    assert not (tmp_path / "nowhere").exists()  # a failed lookup creates nothing


def test_unwritable_or_file_out_is_refused_before_the_data_is_looked_for(tmp_path, capsys):
    (tmp_path / "file").write_text("x")  # a folder inside a file cannot be created, even by root
    with pytest.raises(SystemExit) as info:
        train.main([*TINY, "--data-dir", str(tmp_path / "no-data"), "--out", str(tmp_path / "file" / "run")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and f"cannot write to output folder {tmp_path / 'file' / 'run'}" in err
    assert "MNIST" not in err  # checked before the data is even looked for
    with pytest.raises(SystemExit) as info:
        train.main([*TINY, "--out", str(tmp_path / "file")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith("error: ") and "is a file" in err and "Traceback" not in err
