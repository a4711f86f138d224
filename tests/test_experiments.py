"""evidence/experiments.py: sweeps on a real Ray instance (local, and a head node), resumable, failures reported."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from checkpoint import STATE_FILE, load_state
from evidence.sweeps import ABLATION, SEEDS, already_done, flag_set_runs, sweep_runs

pytestmark = pytest.mark.slow  # starts Ray instances and trains

ROOT = Path(__file__).resolve().parent.parent
TINY = "--epochs 1 --subset 1500"  # 12 steps on real images
TINY8 = "--epochs 8 --subset 1500"  # eight epochs of them, to stop in the middle twice


def sweep(results, *args, env=None, **popen):
    cmd = [sys.executable, "-m", "evidence.experiments", "flags", "tiny", *args, "--results", str(results)]
    if popen:
        return subprocess.Popen(cmd, cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)
    return subprocess.run(cmd, cwd=ROOT, text=True, capture_output=True, timeout=600, env=env)


def test_named_sweeps_cover_the_claims():
    assert len(sweep_runs("sizes")) == 3 * len(SEEDS) and len(sweep_runs("ablation")) == 2 * len(ABLATION)
    assert flag_set_runs(["--epochs 3"], (0, 1)) == {"epochs_3_seed_0": ["--epochs", "3", "--seed", "0"],
                                                          "epochs_3_seed_1": ["--epochs", "3", "--seed", "1"]}


def stop_when(proc, state: Path, epoch: int) -> str:
    """Ctrl-C to `proc` once the run's training state holds `epoch` finished epochs -> what it printed."""
    deadline = time.monotonic() + 300
    while True:
        try:
            if load_state(state)["epoch"] >= epoch:
                break
        except (OSError, ValueError):  # not written yet
            pass
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in out, out
    return out


def wait_until_gone(text: str, seconds: float = 60) -> None:
    """Until no process on this machine has `text` in its command line (Linux's /proc)."""
    def running() -> bool:
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            with contextlib.suppress(OSError):  # a process that ended while we looked
                if text.encode() in cmdline.read_bytes():
                    return True
        return False

    deadline = time.monotonic() + seconds
    while running():
        assert time.monotonic() < deadline, f"a process with {text} in its command line is still running"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def ray_head(data_dir):
    """A local Ray "cluster": `ray start --head` with 2 CPUs and token authentication, stopped afterwards."""
    ray = shutil.which("ray", path=str(Path(sys.executable).parent))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "MNIST_DATA_DIR": str(data_dir),
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": os.urandom(16).hex()}
    subprocess.run([ray, "start", "--head", "--num-cpus", "2", "--include-dashboard", "false",
                    "--disable-usage-stats"], check=True, env=env, capture_output=True, timeout=180)
    yield env
    subprocess.run([ray, "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_sweep_resumes_runs_stopped_mid_run_finishes_them_on_a_cluster_and_skips_what_is_done(data_dir, tmp_path,
                                                                                                request):
    good, diverging = f"{TINY8} --seed 0", f"{TINY} --lr 1e6"
    results, run = tmp_path / "results", tmp_path / "runs" / "sweeps" / "tiny" / "epochs_8_subset_1500_seed_0"
    # Started as from a terminal's foreground: Ctrl-C reaches it even when this test run was started in the
    # background of a script, whose children inherit an ignored SIGINT.
    foreground = dict(start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    stopped_after = []
    for _ in range(2):  # stopped twice in the middle of its run, each time after one more finished epoch
        after = stopped_after[-1] if stopped_after else 0
        stop_when(sweep(results, good, diverging, "--workers", "1", **foreground), run / STATE_FILE, after + 1)
        wait_until_gone(str(run))  # its train.py stops when its cancelled worker is gone
        stopped_after.append(load_state(run / STATE_FILE)["epoch"])
        assert not (results / "tiny" / f"{run.name}.json").exists() and not list(run.glob("*.tmp"))
    assert 1 <= stopped_after[0] < stopped_after[1] < 8
    # Finished on a running cluster (`ray start --head`, started only now: a local `ray.init()` would join it),
    # through Ray's client as from a laptop outside it; its workers find MNIST as the head was started, and the
    # results come back to this machine.
    head = request.getfixturevalue("ray_head")
    rest = sweep(results, good, diverging, "--address", "ray://127.0.0.1:10001", env={**head, "MNIST_DATA_DIR": ""})
    assert rest.returncode == 1, rest.stdout + rest.stderr
    assert "tiny/epochs_1_subset_1500_lr_1e6: FAILED (--epochs 1 --subset 1500 --lr 1e6)" in rest.stdout
    assert "training diverged" in rest.stdout and "1 of 2 run(s) failed" in rest.stderr
    result = json.loads((results / "tiny" / f"{run.name}.json").read_text())
    assert result["resumed_after_epoch"] == stopped_after[1] and result["runs_side_by_side"] == 2 and result["cpu"]
    assert result["command"] == f"OMP_NUM_THREADS=1 python train.py {good}" and result["parameters"] == 15_248
    assert already_done(results / "tiny" / f"{run.name}.json", good.split())
    stamp = (results / "tiny" / f"{run.name}.json").stat().st_mtime_ns
    again = sweep(results, good)  # what is done is not run again
    assert again.returncode == 0 and "tiny: 1 runs, 1 already done, 0 to run" in again.stdout, again.stdout
    assert (results / "tiny" / f"{run.name}.json").stat().st_mtime_ns == stamp
