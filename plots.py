"""Figures beyond the course's curves: digit grids, the confusion matrix and the gallery of mistakes.

matplotlib Figures made without pyplot: they work headless, never leak open windows, and a notebook shows the
returned figure. Save one with `fig.savefig(path)`.
"""

from __future__ import annotations

import math

import torch
from matplotlib.figure import Figure

from model import MEAN, NUM_CLASSES, STD


def confusion_matrix(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """(classes, classes) counts: row = true class, column = predicted class."""
    index = labels.long() * num_classes + predicted.long()
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def image_grid(images: torch.Tensor, titles: list[str], ncols: int = 8, suptitle: str | None = None) -> Figure:
    """A Figure showing normalised (N, 1, 28, 28) `images` as digits, one title each, `ncols` per row."""
    nrows = max(1, math.ceil(len(titles) / ncols))
    fig = Figure(figsize=(1.3 * ncols, 1.5 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles):
        ax.imshow((image[0].cpu() * STD + MEAN).numpy(), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_confusion(matrix: torch.Tensor) -> Figure:
    """The confusion matrix as an annotated heat map with per-class accuracy on the y labels -> Figure."""
    n = matrix.shape[0]
    per_class = 100 * matrix.diag() / matrix.sum(1).clamp(min=1)
    fig = Figure(figsize=(7.5, 6.5))
    ax = fig.subplots()
    ax.imshow(torch.log1p(matrix.float()).numpy(), cmap="Blues")
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=8,
                        color="white" if i == j else "black")
    ax.set_xticks(range(n), [str(j) for j in range(n)])
    ax.set_yticks(range(n), [f"{i}  ({per_class[i]:.1f}%)" for i in range(n)])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (per-class accuracy)")
    total, correct = int(matrix.sum()), int(matrix.diag().sum())
    ax.set_title(f"Confusion matrix: {correct}/{total} correct ({100 * correct / max(total, 1):.2f}%)")
    fig.tight_layout()
    return fig


def plot_misclassified(images: torch.Tensor, labels: torch.Tensor, probs: torch.Tensor, n: int = 40,
                       ncols: int = 10) -> Figure:
    """A gallery of up to `n` misclassified images, most confident mistakes first, titled true -> pred (p)."""
    confidence, predicted = probs.max(1)
    wrong = (predicted != labels).nonzero().flatten()
    wrong = wrong[confidence[wrong].argsort(descending=True)][:n]
    titles = [f"{int(labels[i])} → {int(predicted[i])} ({confidence[i]:.2f})" for i in wrong.tolist()]
    summary = f"{(predicted != labels).sum()} misclassified of {len(labels)}; {len(wrong)} most confident shown"
    return image_grid(images[wrong], titles, ncols, summary)
