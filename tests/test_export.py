"""export.py: one ONNX file, a dynamic batch, the same predictions as PyTorch on all 10,000 test digits."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import export
from checkpoint import DEFAULT_CHECKPOINT, load_checkpoint

pytestmark = pytest.mark.slow  # exports and runs the whole test set


def test_export_cli_writes_one_file_that_agrees_with_pytorch(data_dir, tmp_path, capsys):
    path = tmp_path / "s6.onnx"
    assert export.main(["--out", str(path), "--data-dir", str(data_dir)]) == 0
    assert "10,000 same predictions" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s6.onnx"]  # weights inside, no side file
    onnx.checker.check_model(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model, _ = load_checkpoint(DEFAULT_CHECKPOINT)
    for n in (1, 7):
        x = torch.randn(n, 1, 28, 28)
        out = session.run(None, {"image": x.numpy()})[0]
        assert out.shape == (n, 10)
        np.testing.assert_allclose(np.exp(out).sum(1), 1, rtol=1e-5)
        np.testing.assert_allclose(out, model(x).detach().numpy(), atol=1e-4)


def test_missing_checkpoint_is_exit_2(tmp_path, capsys):
    assert export.main(["--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
