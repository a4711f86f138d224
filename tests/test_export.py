import numpy as np
import onnx
import onnxruntime as ort
import torch

import export
from predict import DEFAULT_CHECKPOINT
from util import load_checkpoint


def test_export_is_one_file_with_a_dynamic_batch_that_agrees_with_pytorch(data_dir, tmp_path):
    path = export.export(DEFAULT_CHECKPOINT, tmp_path / "s6.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s6.onnx"]  # weights inside, no side file
    onnx.checker.check_model(str(path))
    result = export.check(path, DEFAULT_CHECKPOINT, str(data_dir))
    assert result["images"] == 10_000 and result["same_predictions"] == 10_000
    assert result["max_abs_diff"] < 1e-3
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model, _ = load_checkpoint(DEFAULT_CHECKPOINT)
    for n in (1, 7):
        x = torch.randn(n, 1, 28, 28)
        out = session.run(None, {"image": x.numpy()})[0]
        assert out.shape == (n, 10)
        np.testing.assert_allclose(np.exp(out).sum(1), 1, rtol=1e-5)
        np.testing.assert_allclose(out, model(x).detach().numpy(), atol=1e-4)


def test_cli_reports_agreement(data_dir, tmp_path, capsys):
    assert export.main(["--out", str(tmp_path / "m.onnx"), "--data-dir", str(data_dir)]) == 0
    assert "10,000 same predictions" in capsys.readouterr().out
    assert export.main(["--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "x.onnx")]) == 2
