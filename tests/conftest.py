"""Shared fixtures: the real MNIST files (found as the package finds them), real digits, the shipped model."""

import os
import shutil

import pytest

from checkpoint import DEFAULT_CHECKPOINT, FORMAT, load_checkpoint
from datasets import FILES, MNISTNotFoundError, ensure_mnist, mnist_split


def missing(what: str, message: str) -> None:
    """In CI a missing dataset or browser fails the run loudly; elsewhere the test skips with the reason."""
    if os.environ.get("CI"):
        pytest.fail(f"CI needs {what}: {message}")
    pytest.skip(message)


@pytest.fixture(scope="session")
def data_dir():
    """The folder holding the four real MNIST files."""
    try:
        return ensure_mnist()
    except MNISTNotFoundError as exc:
        missing("the MNIST files", str(exc))


@pytest.fixture(scope="session")
def cuda():
    """A CUDA device; without one the test is skipped with the reason (`make gpu-check` runs these on a GPU)."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU and there is none here: `make gpu-check` runs these on a machine with one")
    return torch.device("cuda")


@pytest.fixture(scope="session")
def digits(data_dir):
    """The first 40 MNIST test digits as (uint8 (40, 28, 28) array, labels array)."""
    test = mnist_split(False, data_dir, subset=40)
    return test.data.numpy(), test.targets.numpy()


@pytest.fixture(scope="session")
def model():
    """The shipped checkpoint's model (eval mode, CPU)."""
    return load_checkpoint(DEFAULT_CHECKPOINT)[0]


def copy_mnist(data_dir, dest, rename=None):
    """The four real files copied to dest, each under rename.get(name, name)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copy(data_dir / name, dest / (rename or {}).get(name, name))
    return dest


def payload_of(model, **changes) -> dict:
    """A checkpoint dict as save_checkpoint writes it, with `changes` applied."""
    return {"format": FORMAT, "arch": "Net", "model": model.size, "state_dict": model.state_dict(), **changes}
