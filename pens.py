"""The pen model: digits as centre lines drawn with round pens, and framing a digit as MNIST does.

One implementation for everything that draws or frames a digit: the training pipeline's redrawn strokes
(datasets.py), the preprocessing of people's images (predict.py, so also the app) and the handwriting
conditions (evidence/userset.py). People write with pens and markers, not MNIST's pen: a digit is reduced to its
centre line (thinning at a higher resolution) and redrawn with a round pen of another width.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

IMAGE_SIZE = 28  # MNIST's field, px
DIGIT_BOX = 20  # MNIST scaled each digit's longer side to 20 px inside the 28x28 field
MNIST_STROKE = 1.75  # px at the 20 px digit box: median stroke width of MNIST training digits (a test measures it)
PEN_WIDTHS = (0.4, 3.3)  # x MNIST_STROKE, drawn uniformly: from a fine gel pen to a thick marker
PEN_RES = 2  # pens are drawn and digits framed at this multiple of 28 px, then averaged down: smooth edges
STROKE_LEVEL = 0.4  # ink coverage (0..1) above which an upscaled pixel is part of a stroke, for centre lines


def thin(mask: torch.Tensor) -> torch.Tensor:
    """Zhang-Suen thinning of a boolean (..., H, W) batch of images to one-pixel-wide centre lines."""
    img = mask.bool().reshape(-1, *mask.shape[-2:]).clone()
    changed = True
    while changed:
        changed = False
        for step in (0, 1):
            p = F.pad(img, (1, 1, 1, 1))
            n = [p[:, :-2, 1:-1], p[:, :-2, 2:], p[:, 1:-1, 2:], p[:, 2:, 2:],  # N, NE, E, SE,
                 p[:, 2:, 1:-1], p[:, 2:, :-2], p[:, 1:-1, :-2], p[:, :-2, :-2]]  # S, SW, W, NW
            neighbours = sum(x.to(torch.int8) for x in n)
            transitions = sum((~n[i] & n[(i + 1) % 8]).to(torch.int8) for i in range(8))
            a, b = (n[0] & n[2] & n[4], n[2] & n[4] & n[6]) if step == 0 else (n[0] & n[2] & n[6], n[0] & n[4] & n[6])
            remove = img & (neighbours >= 2) & (neighbours <= 6) & (transitions == 1) & ~a & ~b
            if remove.any():
                img &= ~remove
                changed = True
    return img.reshape(mask.shape)


def centre_lines(images: torch.Tensor, scale: int = PEN_RES, progress=iter) -> torch.Tensor:
    """(N, 28, 28) uint8 digits -> (N, 28 scale, 28 scale) boolean centre lines: upsample, threshold, thin.

    `progress` wraps the iterable of chunks (e.g. tqdm) to show how far it got.
    """
    chunks = []
    for x in progress(images.split(1000)):  # bounded memory: thinning's temporaries are ~20 bytes a pixel
        big = F.interpolate(x[:, None].float().div(255), scale_factor=scale, mode="bicubic", align_corners=False)
        chunks.append(thin(big[:, 0] > STROKE_LEVEL))
    return torch.cat(chunks)


def disc(radius: torch.Tensor | float, largest: float | None = None) -> torch.Tensor:
    """Round pen tips: (..., k, k) float kernels of ones within `radius` px of the centre, k = 2 ceil(largest) + 1
    (by default the largest radius given, which reading back from a GPU waits for)."""
    radius = torch.as_tensor(radius, dtype=torch.float32)
    r = int(math.ceil(float(radius.max() if largest is None else largest)))
    offsets = torch.arange(-r, r + 1, dtype=torch.float32, device=radius.device)
    dist2 = offsets[:, None] ** 2 + offsets[None, :] ** 2
    return (dist2 <= radius[..., None, None] ** 2).float()


def pen_ink(lines: torch.Tensor, radius: torch.Tensor, largest: float | None = None) -> torch.Tensor:
    """Boolean centre lines (B, H, W) drawn with a round pen of `radius[i]` px each -> (B, H, W) ink in {0, 1}."""
    kernels = disc(radius, largest)[:, None]  # (B, 1, k, k): one pen per image, applied as a grouped convolution
    ink = F.conv2d(lines.float()[None], kernels, padding=kernels.shape[-1] // 2, groups=len(lines))[0]
    return ink.gt(0).float()


def frame_digits(ink: torch.Tensor, res: int = PEN_RES) -> torch.Tensor:
    """Ink images (B, H, W) in [0, 1], drawn at `res` x MNIST's scale -> (B, 1, 28, 28) framed as MNIST.

    As MNIST was made: the digit's longer side becomes DIGIT_BOX px and its centre of mass the field's centre.
    Framing happens at `res` x 28 px and is averaged down, which anti-aliases the edges; the darkest ink then
    becomes 1, so a fine pen's one-pixel line is ink, not grey.
    """
    b, h, w = ink.shape
    rows, cols = ink.amax(2) > 0, ink.amax(1) > 0  # (B, H), (B, W)
    extent = lambda m: m.shape[1] - m.float().argmax(1) - m.flip(1).float().argmax(1)  # noqa: E731
    zoom = DIGIT_BOX * res / torch.maximum(extent(rows), extent(cols)).clamp(min=1)
    mass = ink.sum((1, 2)).clamp(min=1e-6)
    cy = (ink.sum(2) * torch.arange(h, device=ink.device)).sum(1) / mass
    cx = (ink.sum(1) * torch.arange(w, device=ink.device)).sum(1) / mass
    # affine_grid maps output to input in [-1, 1] coordinates: scale by 1/zoom around the centre of mass.
    size, zero = IMAGE_SIZE * res, torch.zeros_like(zoom)
    theta = torch.stack([torch.stack([size / (w * zoom), zero, (2 * cx + 1) / w - 1], 1),
                         torch.stack([zero, size / (h * zoom), (2 * cy + 1) / h - 1], 1)], 1)
    grid = F.affine_grid(theta, [b, 1, size, size], align_corners=False)
    framed = F.grid_sample(ink[:, None].float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    small = F.avg_pool2d(framed, res)
    return (small / small.amax((1, 2, 3), keepdim=True).clamp(min=1e-6)).clamp(0, 1)


def draw_strokes(lines: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
    """Centre lines (B, H, W) at PEN_RES drawn with round pens `widths` x MNIST_STROKE wide -> (B, 1, 28, 28)."""
    if len(lines) == 0:
        return lines.new_zeros((0, 1, IMAGE_SIZE, IMAGE_SIZE), dtype=torch.float32)
    return frame_digits(pen_ink(lines, widths.float() * MNIST_STROKE * PEN_RES / 2), PEN_RES)


def redraw_strokes(x: torch.Tensor, lines: torch.Tensor, prob: float,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace a `prob` share of a (B, 1, 28, 28) batch by its digits' centre `lines` redrawn with other pens.

    -> (the new batch, which images were redrawn).
    """
    b = x.shape[0]
    chosen = torch.rand(b, generator=generator, device=x.device) < prob
    lo, hi = PEN_WIDTHS
    widths = lo + (hi - lo) * torch.rand(b, generator=generator, device=x.device)
    if x.device.type == "cpu":  # draw the chosen digits only: the fewest operations
        x = x.clone()
        x[chosen] = draw_strokes(lines[chosen], widths[chosen])
        return x, chosen
    # Elsewhere (a GPU) every digit is drawn with the widest pen's kernel size and the chosen ones kept: shapes
    # that do not depend on the draw, so the host never waits to learn how many were chosen or how wide they are.
    radius = widths * MNIST_STROKE * PEN_RES / 2
    drawn = frame_digits(pen_ink(lines, radius, largest=hi * MNIST_STROKE * PEN_RES / 2), PEN_RES)
    return torch.where(chosen.view(-1, 1, 1, 1), drawn, x), chosen
