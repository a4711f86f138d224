"""evidence/experiments.py: sweeps on a real Ray instance (local, and a head node), resumable, failures reported."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evidence.sweeps import ABLATION, SEEDS, already_done, flag_set_runs, sweep_runs

pytestmark = pytest.mark.slow  # starts Ray instances and trains

ROOT = Path(__file__).resolve().parent.parent
TINY = "--epochs 1 --subset 1500"  # 12 steps on real images


def sweep(results, *args, **popen):
    cmd = [sys.executable, "-m", "evidence.experiments", "flags", "tiny", *args, "--results", str(results)]
    if popen:
        return subprocess.Popen(cmd, cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)
    return subprocess.run(cmd, cwd=ROOT, text=True, capture_output=True, timeout=600)


def test_named_sweeps_cover_the_claims():
    assert len(sweep_runs("sizes")) == 3 * len(SEEDS) and len(sweep_runs("ablation")) == 2 * len(ABLATION)
    assert flag_set_runs(["--epochs 3"], (0, 1)) == {"epochs_3_seed_0": ["--epochs", "3", "--seed", "0"],
                                                          "epochs_3_seed_1": ["--epochs", "3", "--seed", "1"]}


def test_sweep_writes_results_resumes_after_ctrl_c_reports_failures_and_skips_what_is_done(data_dir, tmp_path):
    good = [f"{TINY} --seed {s}" for s in range(3)]
    flag_sets = [*good, f"{TINY} --lr 1e6"]
    # A sweep in a terminal's foreground: Ctrl-C reaches it even when this test run was started in the background
    # of a script, whose children inherit an ignored SIGINT.
    proc = sweep(tmp_path, *flag_sets, "--workers", "1", start_new_session=True,
                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    folder = tmp_path / "tiny"
    deadline = time.monotonic() + 300
    while not (folder.exists() and any(folder.glob("*.json"))):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGINT)  # Ctrl-C to the driver
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in out and not list(folder.glob("*.tmp")), out
    done = {f.name: f.stat().st_mtime_ns for f in folder.glob("*.json")}
    assert 1 <= len(done) < 3

    rest = sweep(tmp_path, *flag_sets, "--workers", "2")  # finishes what is missing; the diverging run fails it
    assert rest.returncode == 1, rest.stdout + rest.stderr
    assert f"tiny: 4 runs, {len(done)} already done, {4 - len(done)} to run" in rest.stdout
    assert "tiny/epochs_1_subset_1500_lr_1e6: FAILED (--epochs 1 --subset 1500 --lr 1e6)" in rest.stdout
    assert "training diverged" in rest.stdout and "1 of " in rest.stderr
    assert all(folder.joinpath(name).stat().st_mtime_ns == t for name, t in done.items())  # kept, not rerun
    files = sorted(folder.glob("*.json"))
    assert [f.name for f in files] == [f"epochs_1_subset_1500_seed_{s}.json" for s in range(3)]
    for f in files:
        run = json.loads(f.read_text())
        assert run["config"]["epochs"] == 1 and len(run["history"]["test_acc"]) == 1 and run["parameters"] == 15_248
        assert run["command"].startswith("OMP_NUM_THREADS=1 python train.py --epochs 1") and run["cpu"]
        assert run["train_flops_per_image"] > 0 and run["runs_side_by_side"] == (1 if f.name in done else 2)
        assert already_done(f, run["command"].split()[3:])
    assert (ROOT / "runs" / "sweeps" / "tiny" / "epochs_1_subset_1500_seed_0" / "checkpoint.pt").exists()

    stamps = {f.name: f.stat().st_mtime_ns for f in files}
    again = sweep(tmp_path, *good)  # what is done is not run again
    assert again.returncode == 0 and "tiny: 3 runs, 3 already done, 0 to run" in again.stdout, again.stdout
    assert {f.name: f.stat().st_mtime_ns for f in files} == stamps


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


def test_address_sends_the_sweep_to_a_running_cluster(ray_head, tmp_path):
    # Through Ray's client, as from a laptop outside the cluster (`--address auto` from a node takes the same path
    # through ray.init here).
    result = subprocess.run([sys.executable, "-m", "evidence.experiments", "flags", "tiny", TINY, "--address",
                             "ray://127.0.0.1:10001",
                             "--results", str(tmp_path)], cwd=ROOT, text=True, capture_output=True, timeout=600,
                            env={**ray_head, "MNIST_DATA_DIR": ""})
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(list((tmp_path / "tiny").glob("*.json"))) == 1  # written back on this (the launching) machine
