"""Shared fixtures: the real MNIST files, found as the package finds them."""

import os

import pytest

from datasets import MNISTNotFoundError, ensure_mnist


@pytest.fixture(scope="session")
def data_dir():
    """MNIST root; in CI a missing dataset fails the run, elsewhere it skips with the reason."""
    try:
        return ensure_mnist()
    except MNISTNotFoundError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the MNIST files: {exc}")
        pytest.skip(str(exc))
