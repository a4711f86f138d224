"""Generic perturbations for training, the non-digits the model learns to call "not a digit", and the
validation perturbations the recipe is chosen on.

Everything works on whole (B, 1, 28, 28) batches of images in [0, 1] with one torch.Generator, so the
fast pipeline stays fast and a seed fixes every draw. None of these is one of MNIST-C's non-geometric
corruptions or a near copy of one (docs/robustness.md says which is closest to which): MNIST-C stays a
benchmark the recipe never saw.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from pens import DIGIT_BOX, IMAGE_SIZE, PEN_RES, centre_lines, frame_digits, redraw_strokes

SIZE = 28
NOT_A_DIGIT_LABEL = -100  # the label of a generated non-digit: F.nll_loss ignores it, the recipe's loss uses it
ELASTIC_GRID = 4  # the random displacement field is drawn on a 4x4 grid and smoothly upsampled: stroke-scale bends


def warp(x: torch.Tensor, angle: torch.Tensor, zoom: torch.Tensor, shift: torch.Tensor | None = None,
         field: torch.Tensor | None = None) -> torch.Tensor:
    """One bilinear warp per image: rotate by `angle` (radians), scale the sampling grid by `zoom`, move by
    `shift` (B, 2) pixels and bend by `field` (B, 28, 28, 2) pixels; black outside the image."""
    cos, sin = torch.cos(angle).to(x.dtype) * zoom, torch.sin(angle).to(x.dtype) * zoom
    tx = ty = torch.zeros_like(cos)
    if shift is not None:  # grid_sample reads the input at the grid, so the picture moves the other way
        tx, ty = -2 * shift[:, 0] / SIZE, -2 * shift[:, 1] / SIZE
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if field is not None:
        grid = grid + field * (2 / SIZE)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_shift(b: int, max_px: float, g: torch.Generator, device) -> torch.Tensor:
    """(B, 2) shifts drawn uniformly from [-max_px, max_px] along each axis."""
    return (torch.rand(b, 2, generator=g, device=device) * 2 - 1) * max_px


def elastic_field(b: int, max_px: float, g: torch.Generator, device) -> torch.Tensor:
    """(B, 28, 28, 2) smooth random displacements of up to ~max_px pixels (Simard et al. 2003, coarse-grid form)."""
    coarse = torch.rand(b, 2, ELASTIC_GRID, ELASTIC_GRID, generator=g, device=device) * 2 - 1
    field = F.interpolate(coarse, size=(SIZE, SIZE), mode="bicubic", align_corners=True) * max_px
    return field.permute(0, 2, 3, 1)


def add_noise(x: torch.Tensor, max_std: float, g: torch.Generator) -> torch.Tensor:
    """Half the images get additive Gaussian noise of a random strength in [0, max_std] (Rusak et al. 2020)."""
    b = x.shape[0]
    std = torch.rand(b, 1, 1, 1, generator=g, device=x.device) * max_std
    std = std * (torch.rand(b, 1, 1, 1, generator=g, device=x.device) < 0.5)
    return (x + std * torch.randn(x.shape, generator=g, device=x.device)).clamp_(0, 1)


def rescan(x: torch.Tensor, side: int) -> torch.Tensor:
    """Images (B, 1, 28, 28) shrunk to `side` px (area-averaged, as a coarse scanner or a small photo records them)
    and enlarged back to 28 px (bilinear): soft, low-resolution ink."""
    small = F.interpolate(x, size=(side, side), mode="area")
    return F.interpolate(small, size=(SIZE, SIZE), mode="bilinear", align_corners=False)


def by_size(x: torch.Tensor, chosen: torch.Tensor, sizes: torch.Tensor, transform) -> torch.Tensor:
    """`x` with each `chosen` image replaced by `transform(images, size)`, one call per size of `sizes` (B,) the
    chosen images have: a batched operation whose size is drawn per image."""
    out = x.clone()
    for size in sizes[chosen].unique().tolist():
        pick = chosen & (sizes == size)
        out[pick] = transform(x[pick], size)
    return out


def low_res(x: torch.Tensor, prob: float, g: torch.Generator) -> torch.Tensor:
    """With `prob`, an image rescanned at 10-20 px (rescan)."""
    b = x.shape[0]
    r = lambda *shape: torch.rand(*shape, generator=g, device=x.device)  # noqa: E731
    chosen, sides = r(b) < prob, (10 + r(b) * 11).long()
    return by_size(x, chosen, sides, rescan)


def erase(x: torch.Tensor, prob: float, g: torch.Generator) -> torch.Tensor:
    """Random erasing (Zhong et al. 2017): with `prob`, a rectangle of 2-25% of the image, aspect 1:3 to 3:1,
    filled with black, white or uniform noise (a third each)."""
    b, dev = x.shape[0], x.device
    r = lambda *shape: torch.rand(*shape, generator=g, device=dev)  # noqa: E731
    area = (0.02 + 0.23 * r(b)) * SIZE * SIZE
    aspect = torch.exp((r(b) * 2 - 1) * math.log(3))
    h, w = (area * aspect).sqrt().clamp(1, SIZE), (area / aspect).sqrt().clamp(1, SIZE)
    top, left = r(b) * (SIZE - h), r(b) * (SIZE - w)
    rows = torch.arange(SIZE, device=dev).view(1, SIZE, 1)
    cols = torch.arange(SIZE, device=dev).view(1, 1, SIZE)
    inside = ((rows >= top.view(-1, 1, 1)) & (rows < (top + h).view(-1, 1, 1))
              & (cols >= left.view(-1, 1, 1)) & (cols < (left + w).view(-1, 1, 1)))
    inside = inside & (r(b) < prob).view(-1, 1, 1)
    kind = (r(b) * 3).long().view(-1, 1, 1)  # 0 black, 1 white, 2 noise
    fill = torch.where(kind == 2, r(b, SIZE, SIZE), (kind == 1).to(x.dtype).expand(b, SIZE, SIZE))
    return torch.where(inside.unsqueeze(1), fill.unsqueeze(1), x)


def segments_ink(points: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """Draw the polylines `points` (B, K, 2) (column, row in pixels) with round pens of `width` (B,) px,
    anti-aliased over one pixel -> (B, 1, 28, 28) ink in [0, 1]."""
    rows, cols = torch.meshgrid(torch.arange(SIZE, dtype=points.dtype, device=points.device),
                                torch.arange(SIZE, dtype=points.dtype, device=points.device), indexing="ij")
    p = torch.stack([cols, rows], -1).view(1, 1, -1, 2)  # (1, 1, 784, 2)
    a, b = points[:, :-1].unsqueeze(2), points[:, 1:].unsqueeze(2)  # (B, K-1, 1, 2)
    ab = b - a
    t = (((p - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-6)).clamp(0, 1)
    dist = (p - (a + t.unsqueeze(-1) * ab)).norm(dim=-1).amin(1)  # (B, 784)
    return (width.view(-1, 1) / 2 + 0.5 - dist).clamp(0, 1).view(-1, 1, SIZE, SIZE)


def smooth_path(points: torch.Tensor, steps: int = 6) -> torch.Tensor:
    """The Catmull-Rom spline through `points` (B, K, 2), `steps` points per span -> (B, (K-1) * steps + 1, 2):
    a pen's curve through the same points a polyline would join with corners."""
    p = torch.cat([points[:, :1], points, points[:, -1:]], 1)  # the end points repeated: the curve ends there
    p0, p1, p2, p3 = p[:, :-3], p[:, 1:-2], p[:, 2:-1], p[:, 3:]  # (B, K-1, 2) each: one span per pair
    t = torch.arange(steps, dtype=points.dtype, device=points.device).view(1, 1, -1, 1) / steps
    p0, p1, p2, p3 = (q.unsqueeze(2) for q in (p0, p1, p2, p3))
    curve = 0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                   + (3 * p1 - p0 - 3 * p2 + p3) * t ** 3)  # (B, K-1, steps, 2)
    return torch.cat([curve.flatten(1, 2), points[:, -1:]], 1)


def few_strokes(n: int, g: torch.Generator, device) -> torch.Tensor:
    """`n` symbols of two or three separate strokes, each straight or bent (what letters and signs are made of)."""
    r = lambda *shape: torch.rand(*shape, generator=g, device=device)  # noqa: E731
    ink = torch.zeros(n, 1, SIZE, SIZE, device=device)
    count = 2 + (r(n) < 0.5).long()
    width = 1.5 + 2.5 * r(n)
    for stroke in range(3):
        ends = 4 + r(n, 2, 2) * 20
        short = (ends[:, 1] - ends[:, 0]).norm(dim=-1, keepdim=True) < 8  # a dot or a tick: stretch it to 8 px
        stretched = ends[:, 0] + 8 * F.normalize(ends[:, 1] - ends[:, 0] + 1e-3, dim=-1)
        ends[:, 1] = torch.where(short, stretched, ends[:, 1])
        mid = ends.mean(1)
        normal = (ends[:, 1] - ends[:, 0]).flip(-1) * torch.tensor([-1.0, 1.0], device=device)
        bend = (r(n, 1) * 2 - 1) * (r(n, 1) < 0.5)  # half of the strokes straight, half arcs
        points = torch.stack([ends[:, 0], mid + 0.5 * bend * normal, ends[:, 1]], 1)
        drawn = segments_ink(points, width) * (stroke < count).view(-1, 1, 1, 1)
        ink = torch.maximum(ink, drawn)
    return ink


# Hand-written letters and signs as stroke skeletons (x right, y down, in a unit box): the shapes people send a
# digit reader instead of a digit. Only part of the alphabet, so that the not-a-digit evaluation set
# (evidence/nondigits.py: system fonts) has letters and signs training never drew (nondigits.UNSEEN says which).
SKELETONS = {
    "A": [[(0, 1), (0.5, 0), (1, 1)], [(0.22, 0.6), (0.78, 0.6)]],
    "E": [[(1, 0), (0, 0), (0, 1), (1, 1)], [(0, 0.5), (0.75, 0.5)]],
    "F": [[(1, 0), (0, 0), (0, 1)], [(0, 0.5), (0.75, 0.5)]],
    "H": [[(0, 0), (0, 1)], [(1, 0), (1, 1)], [(0, 0.5), (1, 0.5)]],
    "K": [[(0, 0), (0, 1)], [(1, 0), (0, 0.6)], [(0.3, 0.4), (1, 1)]],
    "M": [[(0, 1), (0, 0), (0.5, 0.65), (1, 0), (1, 1)]],
    "N": [[(0, 1), (0, 0), (1, 1), (1, 0)]],
    "R": [[(0, 1), (0, 0), (0.7, 0), (0.95, 0.22), (0.7, 0.45), (0, 0.45)], [(0.35, 0.45), (1, 1)]],
    "T": [[(0, 0), (1, 0)], [(0.5, 0), (0.5, 1)]],
    "W": [[(0, 0), (0.25, 1), (0.5, 0.35), (0.75, 1), (1, 0)]],
    "X": [[(0, 0), (1, 1)], [(1, 0), (0, 1)]],
    "Y": [[(0, 0), (0.5, 0.5), (1, 0)], [(0.5, 0.5), (0.5, 1)]],
    "e": [[(0.05, 0.55), (0.95, 0.55), (0.85, 0.25), (0.5, 0.1), (0.12, 0.3), (0.1, 0.75), (0.5, 1), (0.95, 0.85)]],
    "h": [[(0, 0), (0, 1)], [(0, 0.6), (0.3, 0.4), (0.75, 0.4), (1, 0.6), (1, 1)]],
    "m": [[(0, 1), (0, 0.3)], [(0, 0.45), (0.25, 0.3), (0.5, 0.45), (0.5, 1)], [(0.5, 0.45), (0.75, 0.3), (1, 0.45),
                                                                              (1, 1)]],
    "+": [[(0.5, 0.05), (0.5, 0.95)], [(0.05, 0.5), (0.95, 0.5)]],
    "=": [[(0, 0.35), (1, 0.35)], [(0, 0.65), (1, 0.65)]],
    "#": [[(0.4, 0), (0.3, 1)], [(0.75, 0), (0.65, 1)], [(0, 0.35), (1, 0.35)], [(0, 0.68), (1, 0.68)]],
}


@functools.cache  # built once, not per batch
def _skeleton_table() -> tuple[torch.Tensor, torch.Tensor]:
    """SKELETONS as a skeleton table (read-only)."""
    return skeleton_table(list(SKELETONS.values()))


def skeleton_table(glyphs: list[list[list[tuple[float, float]]]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Glyphs (strokes of (x, y) points in the unit square, y down) as (glyphs, strokes, points, 2) coordinates,
    short strokes padded with their last point, and a (glyphs, strokes) mask of the strokes that exist."""
    n_strokes = max(len(s) for s in glyphs)
    n_points = max(len(p) for s in glyphs for p in s)
    table = torch.zeros(len(glyphs), n_strokes, n_points, 2)
    present = torch.zeros(len(glyphs), n_strokes, dtype=torch.bool)
    for i, strokes in enumerate(glyphs):
        for j, points in enumerate(strokes):
            points = torch.tensor(points, dtype=torch.float32)
            table[i, j] = torch.cat([points, points[-1:].expand(n_points - len(points), 2)])
            present[i, j] = True
    return table, present


# Printed letters and signs in typefaces the not-a-digit evaluation set never uses: matplotlib's own STIX and
# Computer Modern faces (installed with matplotlib; the evaluation renders the system's DejaVu and Liberation).
# A few of the evaluation's characters are left out (nondigits.NEVER_TRAINED: those training never draws or prints,
# reported apart), Greek letters and signs it lacks are in; nothing that is a digit in some hands (O, I, l, S, Z, B,
# g, q, theta, phi, rho, ...).
FONT_CHARS = ("ACDEHJKMNPRTUWXYacefhkmnrtuvxy+-×÷!#&@<>~^}"
              "ΓΔΛΞΠΣΨΩαβγεζηκλμπτψω→←↑↓√∞≈≠≤≥§¶©®€£¥•")
TRAIN_FACES = ("STIXGeneral", "STIXGeneralBol", "STIXGeneralItalic", "STIXGeneralBolIta", "cmr10", "cmb10", "cmtt10")
VALIDATION_FACES = ("cmss10", "cmti10")  # held out of training: the validation's printed non-digits


@functools.cache  # rendered once per process
def font_glyphs(faces: tuple[str, ...] = TRAIN_FACES, chars: str = FONT_CHARS) -> torch.Tensor:
    """Every one of `chars` each of matplotlib's `faces` has, framed as MNIST -> (N, 1, 28, 28) (read-only)."""
    import matplotlib
    from fontTools.ttLib import TTFont
    from PIL import Image, ImageDraw, ImageFont

    box, canvas = DIGIT_BOX * PEN_RES, IMAGE_SIZE * PEN_RES
    ink = []
    for name in faces:
        path = f"{matplotlib.get_data_path()}/fonts/ttf/{name}.ttf"
        cmap, face = TTFont(path).getBestCmap(), ImageFont.truetype(path, 96)
        for char in chars:
            if ord(char) not in cmap or (name.startswith("cm") and not (char.isascii() and char.isalnum())):
                continue  # Computer Modern's files put TeX's own signs at most other code points
            img = Image.new("L", (320, 320), 0)
            ImageDraw.Draw(img).text((160, 160), char, font=face, fill=255, anchor="mm")
            glyph = img.crop(img.getbbox())
            scale = box / max(glyph.size)  # the longer side fills the digit box, as predict.py frames a photo
            glyph = glyph.resize((max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))),
                                 Image.Resampling.LANCZOS)
            square = Image.new("L", (canvas, canvas), 0)
            square.paste(glyph, ((canvas - glyph.width) // 2, (canvas - glyph.height) // 2))
            ink.append(torch.frombuffer(bytearray(square.tobytes()), dtype=torch.uint8).view(canvas, canvas))
    return frame_digits(torch.stack(ink).float() / 255, PEN_RES)


@functools.cache
def _font_glyph_lines(chars: str) -> torch.Tensor:
    """The centre lines of font_glyphs(TRAIN_FACES, chars), for redrawing them with a pen (read-only)."""
    return centre_lines((font_glyphs(TRAIN_FACES, chars)[:, 0] * 255).round().to(torch.uint8))


def printed_letters(n: int, g: torch.Generator, device) -> torch.Tensor:
    """`n` of font_glyphs(), half of them redrawn along their centre lines with a random pen (a hand copying
    print), each rotated, scaled and bent a little."""
    return _print(torch.randint(len(font_glyphs(TRAIN_FACES, FONT_CHARS)), (n,), generator=g, device=device),
                  FONT_CHARS, g)


DIGITS = "0123456789"


def printed_digits(x: torch.Tensor, labels: torch.Tensor, prob: float, g: torch.Generator) -> torch.Tensor:
    """Digits (B, 1, 28, 28) with a `prob` share replaced by the same digit printed in a training face (every
    TRAIN_FACES face has all ten), as printed_letters prints: a 1 with a flag and a base, a narrow 0, serifs."""
    b = len(x)
    face = torch.randint(len(TRAIN_FACES), (b,), generator=g, device=x.device)
    chosen = (torch.rand(b, generator=g, device=x.device) < prob).nonzero()[:, 0]  # only these are drawn
    if not len(chosen):
        return x
    x = x.clone()
    x[chosen] = _print(face[chosen] * len(DIGITS) + labels[chosen], DIGITS, g)
    return x


def _print(pick: torch.Tensor, chars: str, g: torch.Generator) -> torch.Tensor:
    """The glyphs `pick` of font_glyphs(TRAIN_FACES, chars), half of them redrawn along their centre lines with a
    random pen, each rotated, scaled and bent a little."""
    device, n = pick.device, len(pick)
    bank, lines = font_glyphs(TRAIN_FACES, chars).to(device), _font_glyph_lines(chars).to(device)
    x, _ = redraw_strokes(bank[pick], lines[pick], 0.5, g)
    r = lambda *shape: torch.rand(*shape, generator=g, device=device)  # noqa: E731
    return warp(x, (r(n) * 2 - 1) * 0.25, 0.9 + 0.2 * r(n), None, elastic_field(n, 1.5, g, device))


def hand_letters(n: int, g: torch.Generator, device, keep: torch.Tensor | None = None) -> torch.Tensor:
    """`n` of SKELETONS written by a random hand (hand_drawn; only the `keep` ones drawn, the rest left blank)."""
    table, present = (t.to(device) for t in _skeleton_table())
    return hand_drawn(table, present, torch.randint(len(table), (n,), generator=g, device=device), g, keep)


def hand_drawn(table: torch.Tensor, present: torch.Tensor, pick: torch.Tensor, g: torch.Generator,
               keep: torch.Tensor | None = None) -> torch.Tensor:
    """The glyphs `pick` of a skeleton table (as _skeleton_table's) written by a random hand: each point moved a
    little, the glyph slanted, squeezed and rotated at random, drawn with a round pen 1.5-4 px wide. With a boolean
    `keep`, only those are drawn (the rest stay blank); the random hands are drawn for all, so the generator's
    stream, and every kept glyph, is the same whatever `keep` is."""
    n, device = len(pick), table.device
    r = lambda *shape: torch.rand(*shape, generator=g, device=device)  # noqa: E731
    glyphs = table[pick]  # (n, S, K, 2)
    points = glyphs + 0.05 * torch.randn(glyphs.shape, generator=g, device=device)
    width, slant, angle = 0.5 + 0.5 * r(n), (r(n) * 2 - 1) * 0.25, (r(n) * 2 - 1) * 0.25
    x, y = points[..., 0] - 0.5, points[..., 1] - 0.5
    x = (x * width.view(-1, 1, 1) - slant.view(-1, 1, 1) * y)
    cos, sin = torch.cos(angle).view(-1, 1, 1), torch.sin(angle).view(-1, 1, 1)
    pixels = 14 + 16 * torch.stack([cos * x - sin * y, sin * x + cos * y], -1)
    pen = 1.5 + 2.5 * r(n)
    rows = torch.arange(n, device=device) if keep is None else keep.nonzero()[:, 0]
    ink = torch.zeros(len(rows), 1, SIZE, SIZE, device=device)
    for stroke in range(table.shape[1]):
        drawn = segments_ink(pixels[rows, stroke], pen[rows]) * present[pick[rows], stroke].view(-1, 1, 1, 1)
        ink = torch.maximum(ink, drawn)
    if keep is None:
        return ink
    return torch.zeros(n, 1, SIZE, SIZE, device=device).index_copy_(0, rows, ink)


def not_digits(digits: torch.Tensor, n: int, g: torch.Generator, letters: float = 0.0,
               printed: float = 0.0, curves: float = 0.0) -> torch.Tensor:
    """`n` training non-digits in [0, 1]: scribbles (a `curves` share of them smooth curves, the rest corners),
    blobs, few-stroke symbols and two of the batch's digits side by side, a quarter each, of which a `letters`
    share is replaced by hand-written letters and signs (stroke skeletons) and then a `printed` share by printed
    ones (printed_letters). What people draw or photograph instead of one digit; the model learns to spread its
    probability over them."""
    dev = digits.device
    r = lambda *shape: torch.rand(*shape, generator=g, device=dev)  # noqa: E731
    kind = torch.arange(n, device=dev) % 4
    # Scribbles: 4-8 random points, a pen 1.5-4 px wide.
    k = 8
    points = 4 + r(n, k, 2) * 20
    keep = torch.arange(k, device=dev).view(1, k) < (4 + (r(n) * 5).long()).view(-1, 1)
    points = torch.where(keep.unsqueeze(-1), points, points[:, :1].expand(n, k, 2))  # unused points repeat the first
    scribble = segments_ink(points, 1.5 + 2.5 * r(n))
    if curves:  # drawn only when asked, so runs without curves keep their random draws
        curve = segments_ink(smooth_path(points), 1.5 + 2.5 * r(n))
        scribble = torch.where((r(n) < curves).view(-1, 1, 1, 1), curve, scribble)
    # Blobs: a smooth random field, thresholded into one or a few filled shapes.
    field = F.interpolate(r(n, 1, 5, 5), size=(SIZE, SIZE), mode="bicubic", align_corners=True)
    window = torch.hann_window(SIZE + 2, periodic=False, device=dev)[1:-1]
    field = field * (window.view(1, 1, -1, 1) * window.view(1, 1, 1, -1))
    blob = ((field - 0.35 - 0.2 * r(n, 1, 1, 1)) * 8).clamp(0, 1)
    # Two digits side by side, each squeezed to half width.
    pairs = digits[torch.randint(len(digits), (n, 2), generator=g, device=dev)]  # (n, 2, 1, 28, 28)
    halves = F.interpolate(pairs.flatten(0, 1), size=(SIZE, SIZE // 2), mode="bilinear", antialias=True,
                           align_corners=False).view(n, 2, 1, SIZE, SIZE // 2)
    side_by_side = torch.cat([halves[:, 0], halves[:, 1]], dim=-1)
    out = torch.where((kind == 0).view(-1, 1, 1, 1), scribble, blob)
    out = torch.where((kind == 2).view(-1, 1, 1, 1), side_by_side, out)
    out = torch.where((kind == 3).view(-1, 1, 1, 1), few_strokes(n, g, dev), out)
    if letters:  # drawn only when asked, so runs without letters keep their random draws
        chosen = r(n) < letters  # only these are drawn: letters are the slow kind
        hand = hand_letters(n, g, dev, keep=chosen)
        out = torch.where(chosen.view(-1, 1, 1, 1), hand, out)
    if printed:
        out = torch.where((r(n) < printed).view(-1, 1, 1, 1), printed_letters(n, g, dev), out)
    return frame_digits(out[:, 0], 1)  # framed as MNIST frames a digit, and as predict.py and the app frame anything


def validation_perturbations(x: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """The perturbations a recipe is chosen on, applied to held-out training digits (B, 1, 28, 28) in [0, 1].

    Generic changes of writing and imaging, at strengths training does not use; none is an MNIST-C corruption.
    """
    g = torch.Generator(device=x.device).manual_seed(seed)
    b = x.shape[0]
    zero = torch.zeros(b, device=x.device)
    ramp_angle = torch.rand(b, generator=g, device=x.device) * 2 * math.pi
    rows, cols = torch.meshgrid(torch.linspace(-1, 1, SIZE, device=x.device),
                                torch.linspace(-1, 1, SIZE, device=x.device), indexing="ij")
    ramp = (torch.cos(ramp_angle).view(-1, 1, 1, 1) * cols + torch.sin(ramp_angle).view(-1, 1, 1, 1) * rows + 1.5) / 3
    blur = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=x.device)
    blur = (blur.view(1, -1) * blur.view(-1, 1) / 256).view(1, 1, 5, 5)
    signs = torch.randint(0, 2, (b, 2), generator=g, device=x.device) * 2 - 1
    return {
        "noise": (x + 0.35 * torch.randn(x.shape, generator=g, device=x.device)).clamp(0, 1),
        "dim on a gradient": (0.45 * x + 0.5 * ramp).clamp(0, 1),
        "occluded": erase(x, 1.0, g),
        "shifted 4 px": warp(x, zero, torch.ones(b, device=x.device), 4.0 * signs),
        "bent": warp(x, zero, torch.ones(b, device=x.device), None, elastic_field(b, 3.0, g, x.device)),
        "blurred": F.conv2d(x, blur, padding=2),
        "thick pen": F.max_pool2d(x, 3, stride=1, padding=1),
        "thin pen": -F.max_pool2d(F.pad(-x, (0, 1, 0, 1)), 2, stride=1),
    }
