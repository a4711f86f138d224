"""Export a checkpoint to ONNX and check it: `python export.py [--checkpoint PATH] [--out s6.onnx]`.

The file takes (N, 1, 28, 28) normalised float32 images (any N) and returns (N, 10) log-probabilities.
After writing it, onnxruntime runs it on all 10,000 MNIST test digits: its predictions must equal
PyTorch's, and the largest absolute difference of the outputs is printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from checkpoint import DEFAULT_CHECKPOINT, load_checkpoint
from datasets import load_data
from model import INPUT_SHAPE

OPSET = 18  # ONNX opset: supported by onnxruntime >= 1.14 and by torch's exporter


def export(checkpoint: str | Path, out: str | Path) -> Path:
    """Write the model in `checkpoint` to `out` as ONNX with a dynamic batch dimension; return the path."""
    model, _ = load_checkpoint(checkpoint)
    model = model.to(memory_format=torch.contiguous_format).eval()
    example = torch.zeros(2, *INPUT_SHAPE)
    torch.onnx.export(
        model, (example,), str(out), input_names=["image"], output_names=["log_probs"], opset_version=OPSET,
        dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, dynamo=True, external_data=False, verbose=False,
    )
    return Path(out)


def check(onnx_path: str | Path, checkpoint: str | Path, data_dir: str | None = None) -> dict:
    """Run the ONNX file and the checkpoint on the MNIST test set -> agreement and largest output difference."""
    import onnxruntime as ort

    model, _ = load_checkpoint(checkpoint)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    _, test_loader = load_data(128, data_dir, test_batch_size=1000)
    same, total, max_diff = 0, 0, 0.0
    with torch.inference_mode():
        for images, _ in test_loader:
            ours = model(images).numpy()
            theirs = session.run(None, {"image": images.numpy()})[0]
            same += int((ours.argmax(1) == theirs.argmax(1)).sum())
            total += len(images)
            max_diff = max(max_diff, float(np.abs(ours - theirs).max()))
    return {"images": total, "same_predictions": same, "max_abs_diff": max_diff}


def main(argv: list[str] | None = None) -> int:
    """CLI: export, check, print the result; exit 1 if any prediction differs."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="default: checkpoints/s6.pt")
    p.add_argument("--out", type=Path, default=Path("s6.onnx"), help="default: s6.onnx")
    p.add_argument("--data-dir", default=None, help="MNIST root for the check (default: $MNIST_DATA_DIR, else ./data)")
    a = p.parse_args(argv)
    try:
        path = export(a.checkpoint, a.out)
        result = check(path, a.checkpoint, a.data_dir)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB); onnxruntime vs PyTorch on {result['images']:,} MNIST "
          f"test images: {result['same_predictions']:,} same predictions, max |diff| {result['max_abs_diff']:.2e}")
    return 0 if result["same_predictions"] == result["images"] else 1


if __name__ == "__main__":
    sys.exit(main())
