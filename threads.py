"""How many threads torch computes with: the thread policy that keeps training fast on a busy laptop.

torch's intra-op threads spin-wait for each other, so two threads on a 2-core laptop where a browser or a notebook
server takes one core are several times slower than one thread. By default the threads follow the cores other
programs leave free, looked at between batches; `--threads N` (or OMP_NUM_THREADS) fixes them, which also
reproduces a history exactly. The policy wraps the training loader, so the training loop itself never sees it.
"""

from __future__ import annotations

import math
import os
import platform
import time

import torch

FIRST_LOOK, LOOK_EVERY = 0.25, 1.0  # s: a first look at the other programs' load soon, then once a second


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else platform's guess: results name the hardware."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


class CoreWatch:
    """How many cores other programs leave free, from /proc/stat (Linux): the machine's busy time minus ours.

    `free()` answers for the time since the last call.
    """

    def __init__(self) -> None:
        self.cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        self.last = self._read()
        self.looks = 0

    @staticmethod
    def _read() -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat") as f:
                ticks = [int(v) for v in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None  # not Linux: no measurement, threads stay as they are
        hz = os.sysconf("SC_CLK_TCK")
        busy = (sum(ticks) - ticks[3] - ticks[4]) / hz  # all but idle and iowait, in core-seconds
        own = sum(os.times()[:2])
        return time.monotonic(), busy, own

    def free(self) -> int | None:
        """Cores not used by other programs since the last look (at least 1); None if unknown or too soon.

        The first look comes FIRST_LOOK seconds after the start, the next ones every LOOK_EVERY.
        """
        every = FIRST_LOOK if self.looks == 0 else LOOK_EVERY
        if self.last is None or time.monotonic() - self.last[0] < every:
            return None
        now = self._read()
        if now is None:
            return None
        wall = now[0] - self.last[0]
        others = max(0.0, (now[1] - self.last[1]) - (now[2] - self.last[2])) / wall
        self.last, self.looks = now, self.looks + 1
        return max(1, min(self.cores, self.cores - math.floor(others + 0.5)))


def fixed_by(threads: int | None) -> str | None:
    """What fixes torch's thread count: "--threads" (an int given), "OMP_NUM_THREADS", or None (automatic)."""
    if threads is not None:
        return "--threads"
    return "OMP_NUM_THREADS" if os.environ.get("OMP_NUM_THREADS") else None


def thread_policy(threads: int | None) -> CoreWatch | None:
    """Apply `threads` (an int fixes torch's intra-op threads) -> a CoreWatch when they follow the free cores.

    None means automatic, unless OMP_NUM_THREADS is set, which fixes them as the user asked.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    return CoreWatch() if fixed_by(threads) is None else None


def describe_threads(threads: int | None) -> str:
    """One line for a run's start (after thread_policy): the thread count and where it comes from."""
    source = fixed_by(threads)
    if source is not None:
        return f"threads: {torch.get_num_threads()} ({source})"
    return (f"threads: {torch.get_num_threads()}, following the cores other programs leave free "
            f"(--threads N fixes them)")


class FollowFreeCores:
    """`loader` with the thread policy applied: each pass applies `threads` and, when they are automatic, sets
    torch's threads between batches to the cores other programs left free. Everything else is the loader's
    (len(), .dataset, .generator, ...): `train(model, device, FollowFreeCores(train_loader, None), optimizer)`.
    """

    def __init__(self, loader, threads: int | None) -> None:
        self.loader, self.threads = loader, threads

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str):
        if name == "loader":  # not set yet (a copy being made): no loader to ask
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __iter__(self):
        watch = thread_policy(self.threads)
        for batch in self.loader:
            yield batch  # the training step runs here
            free = watch.free() if watch is not None else None
            if free is not None and free != torch.get_num_threads():
                torch.set_num_threads(free)
