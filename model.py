"""The CNN: 15,248 parameters, >= 99.4% MNIST test accuracy (see README for the measured runs).

Read top to bottom as the architecture table. Sizes are (channels, height, width) after each stage;
RF is the receptive field in input pixels. Pooling comes straight after the first convolution, so
the heavy 3x3 stages run at 13x13 and below: this keeps training fast on a laptop CPU.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

INPUT_SHAPE = (1, 28, 28)  # (channels, height, width) of an MNIST image
NUM_CLASSES = 10
DROPOUT = 0.05  # channel-wise (Dropout2d): element-wise dropout costs more CPU time than the convs here


def block(c_in: int, c_out: int, padding: int = 0, dropout: float = 0.0) -> nn.Sequential:
    """3x3 conv (no bias: BatchNorm has one) -> BatchNorm -> ReLU [-> channel dropout]."""
    layers = [nn.Conv2d(c_in, c_out, 3, padding=padding, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout2d(dropout))
    return nn.Sequential(*layers)


class Net(nn.Module):
    """MNIST classifier: (N, 1, 28, 28) normalised images -> (N, 10) log-probabilities."""

    def __init__(self, dropout: float = DROPOUT) -> None:
        super().__init__()
        # Max-pool before BatchNorm/ReLU: ReLU commutes with the max, and normalising the pooled map
        # instead of the full one costs a quarter of the work.
        self.stem = nn.Sequential(
            nn.Conv2d(1, 16, 3, bias=False),  # 16x26x26, RF 3
            nn.MaxPool2d(2),  #                  16x13x13, RF 4
            nn.BatchNorm2d(16),
            nn.ReLU(),
        )
        self.features = nn.Sequential(
            block(16, 16, dropout=dropout),  #    16x11x11, RF 8
            block(16, 16, dropout=dropout),  #    16x9x9,   RF 12
            block(16, 20, dropout=dropout),  #    20x7x7,   RF 16
            block(20, 20),  #                     20x5x5,   RF 20
            block(20, 20, padding=1),  #          20x5x5,   RF 24: the whole digit
        )
        self.head = nn.Sequential(
            nn.Conv2d(20, NUM_CLASSES, 1, bias=False),  # 1x1 reduction to one map per class: 10x5x5
            nn.AdaptiveAvgPool2d(1),  #                    global average pooling: 10x1x1
            nn.Flatten(),  #                               10 logits
        )
        # NHWC activations let oneDNN's CPU convolutions skip layout conversions: ~1.4x faster training here.
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != INPUT_SHAPE:
            raise ValueError(
                f"Net expects a float batch of shape (N, {', '.join(map(str, INPUT_SHAPE))}), "
                f"got {tuple(x.shape)}. Add a batch dimension with x.unsqueeze(0) for one image, "
                f"and convert RGB to one grey channel."
            )
        return F.log_softmax(self.head(self.features(self.stem(x))), dim=1)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def model_summary(model: nn.Module) -> None:
    """Print torchsummary's layer table for `model` without touching it.

    torchsummary runs a forward pass in whatever mode the model is in (train mode would shift BatchNorm's
    running statistics) and puts its input on CUDA by default, so it gets an eval-mode copy on the CPU.
    """
    from torchsummary import summary

    summary(copy.deepcopy(model).cpu().eval(), INPUT_SHAPE, device="cpu")
    print(f"Trainable parameters: {count_parameters(model):,}")
