"""torch.hub entry points for the shipped models: `torch.hub.load("OWNER/REPO", "s6")`, or from a clone
`torch.hub.load("/path/to/repo", "s6", source="local")`; `torch.hub.list(...)` and `torch.hub.help(..., "s6")`.

Both read the repository's own checkpoints (checkpoints/*.pt, weights only): nothing is downloaded beyond the
repository itself, and nothing of the app, the ONNX export or the sweeps is imported. The model card is
checkpoints/README.md.
"""

import s6 as _project  # the modules as one package: never bound to a notebook's own `model.py` or `datasets`

dependencies = ["torch"]  # what torch.hub checks before loading


def _load(path, size: str, pretrained: bool):
    if not pretrained:
        return _project.Net(size).eval()  # the default input normalisation, as both shipped models had
    return _project.load_checkpoint(path)[0]


def s6(pretrained: bool = True):
    """The digit reader: `Net("15k")` (15,248 parameters) trained with the default recipe, seed 0
    (checkpoints/s6.pt), in eval mode on the CPU.

    Input: a float tensor (N, 1, 28, 28) of normalised images, as `model.normalize` makes them from [0, 1]
    pixels: white ink on black, the digit framed as MNIST frames it (`predict.preprocess` does all of this for a
    photo or a drawing). Output: log-probabilities (N, 10); `.argmax(1)` is the digit.
    Figures: 99.51% of the 10,000 MNIST test digits; 95.5% on MNIST-C's 15 corruptions (worst: canny edges,
    87.6%). It always names a digit: pair it with `s6_reject` to hear "not a digit".
    `pretrained=False`: the untrained network of that size.
    """
    return _load(_project.checkpoint.DEFAULT_CHECKPOINT, "15k", pretrained)


def s6_reject(pretrained: bool = True):
    """The rejection model: `Net("60k")` (59,872 parameters) trained with generated non-digits (the rejection
    recipe, seed 0; checkpoints/s6-reject.pt), in eval mode on the CPU. Its answers are not shown; its top
    probability is the verdict: under 0.6 (`checkpoint.REJECT_BELOW`) means "not a digit / not sure".

    Input: as `s6`, normalised (N, 1, 28, 28) images (`model.normalize`). Output: log-probabilities (N, 10).
    Figures: it refuses 89.1% of the not-a-digit set and 0.87% of the 10,000 MNIST test digits; its own answers
    (never shown) read 99.59% of them.
    `pretrained=False`: the untrained network of that size.
    """
    return _load(_project.checkpoint.DEFAULT_REJECTOR, "60k", pretrained)
