"""train.py: what a run writes, and that bad flags, bad data and bad folders fail before training, in one line."""

import contextlib
import json
import os
import signal
import threading
import time

import pytest
import torch
from conftest import copy_mnist

import train
from checkpoint import STATE_FILE, load_checkpoint, load_state
from datasets import FILES, load_data
from model import probabilities

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
    images, labels = test_loader.dataset.inputs()
    assert 100 * int((probabilities(model, images).argmax(1) == labels).sum()) / len(labels) == acc


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


@contextlib.contextmanager
def signal_after(state_path, epoch: int, signum: int):
    """Send this process `signum` (as Ctrl-C or a preempting scheduler would) once the run's training state holds
    `epoch` finished epochs."""
    done = threading.Event()

    def watch():
        while not done.is_set():
            with contextlib.suppress(OSError, ValueError):
                if load_state(state_path)["epoch"] >= epoch:
                    os.kill(os.getpid(), signum)
                    return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


@pytest.mark.slow  # four runs
def test_a_run_stopped_twice_resumes_to_the_uninterrupted_history_and_weights(data_dir, tmp_path, capsys):
    flags = ["--epochs", "3", "--subset", "1500", "--threads", "1", "--data-dir", str(data_dir)]
    threads = torch.get_num_threads()
    try:
        train.main([*flags, "--out", str(tmp_path / "whole")])
        run = tmp_path / "stopped"
        for args, epoch, signum in (([*flags, "--out", str(run)], 1, signal.SIGINT),
                                    (["--resume", str(run)], 2, signal.SIGTERM)):
            with signal_after(run / STATE_FILE, epoch, signum), pytest.raises(SystemExit) as stopped:
                train.main(args)
            assert stopped.value.code == 128 + signum
            said = capsys.readouterr().err
            assert f"interrupted after {epoch} complete epoch(s) of 3; continue with: python train.py --resume {run}" \
                in said, said
            assert load_state(run / STATE_FILE)["epoch"] == epoch  # the last finished epoch, readable
        acc = train.main(["--resume", str(run)])
    finally:
        torch.set_num_threads(threads)
    whole, resumed = (json.loads((folder / "history.json").read_text()) for folder in (tmp_path / "whole", run))
    assert resumed["resumed_after_epoch"] == 2 and resumed["history"]["test_acc"][-1] == acc
    assert {k: v for k, v in resumed["history"].items() if k != "seconds"} == \
        {k: v for k, v in whole["history"].items() if k != "seconds"}
    weights = [load_checkpoint(folder / "checkpoint.pt")[0].state_dict() for folder in (tmp_path / "whole", run)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert train.main(["--resume", str(run)]) == acc and "nothing to resume" in capsys.readouterr().out
    (run / STATE_FILE).write_bytes(b"half a file")  # damaged: refused with what to do
    with pytest.raises(SystemExit) as refused:
        train.main(["--resume", str(run)])
    assert refused.value.code == 2 and "damaged" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main(["--resume", str(run), "--lr", "0.1"])
    assert "--resume continues a run with its own config: drop --lr" in capsys.readouterr().err
