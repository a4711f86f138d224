"""Draw a digit: a Gradio app around the shipped checkpoint. `python app.py [--port 7860] [--checkpoint PATH]`.

A drawing pad (mouse, pen or finger; the answer follows each stroke) and an upload box for a photo or scan; it
shows the verdict (a digit, or "not a digit / not sure"), the top-3 digits with their probabilities and the 28x28
image the model actually saw. Every image goes through predict.py's preprocessing and verdict (one code path for
the command line, the app and its API). It runs offline on 127.0.0.1: Gradio's analytics are off and the theme
uses the system's fonts, so the page asks nothing of the internet.

API: `gradio_client.Client(url).predict(handle_file("digit.png"), api_name="/classify")` returns predict.py's
--json object: {"verdict": "7", "is_digit": true, "digit": 7, "probability": 0.99, "top3": [[7, 0.99], ...],
"verdict_probability": 0.99} (the digit from checkpoints/s6.pt, the verdict from the rejection model s6-reject.pt).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no calls home

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from checkpoint import DEFAULT_CHECKPOINT, DEFAULT_REJECTOR, OWN_REJECT_BELOW, REJECT_BELOW, load_checkpoint  # noqa: E402
from predict import (  # noqa: E402
    NOT_A_DIGIT_TEXT,
    ImageError,
    add_rejector_argument,
    load_rejector,
    open_image,
    predict_image,
)

SEEN_PX = 224  # the 28x28 model input is shown enlarged 8x, nearest-neighbour so each pixel stays visible
DRAW_HINT = "Draw one digit, large and centred or not: the app crops and centres it the way MNIST was made."
NOTHING_DRAWN = "Nothing drawn yet: " + DRAW_HINT
NO_UPLOAD = "No image yet: upload a photo or scan of one handwritten digit."

# The drawing pad: a plain canvas that is the whole box (Gradio's Sketchpad drops strokes that start in the
# margin around its drawing square). Strokes are kept in the page and repainted; after each one the pad's value
# becomes the drawing as a PNG data URL and its change event asks for the answer.
PAD_SIDE = 400  # px of the drawing as it is sent (the box on screen may be larger or smaller)
PAD_TEMPLATE = (f'<div class="s6-pad"><canvas width="{PAD_SIDE}" height="{PAD_SIDE}"></canvas>'
                '<button type="button" class="s6-clear" aria-label="Clear drawing">Clear</button></div>')
PAD_CSS = (".s6-pad { position: relative; max-width: 480px; margin: auto; } "
           ".s6-pad canvas { width: 100%; aspect-ratio: 1; background: #fff; border: 1px solid #bbb; "
           "border-radius: 6px; touch-action: none; cursor: crosshair; display: block; } "
           ".s6-clear { position: absolute; top: 8px; right: 8px; padding: 2px 10px; border: 1px solid #bbb; "
           "border-radius: 4px; background: #f6f6f6; }")
PAD_JS = """
const strokes = []; let current = null;
const canvas = () => element.querySelector('canvas');
function paint() {
  const c = canvas(), ctx = c.getContext('2d');
  ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, c.width, c.height);
  ctx.strokeStyle = '#000'; ctx.lineWidth = 18; ctx.lineCap = 'round'; ctx.lineJoin = 'round';
  for (const s of strokes) { ctx.beginPath(); ctx.moveTo(...s[0]); for (const p of s) ctx.lineTo(...p); ctx.stroke(); }
}
function at(e) {
  const r = canvas().getBoundingClientRect();
  return [(e.clientX - r.left) * SIDE / r.width, (e.clientY - r.top) * SIDE / r.height];
}
element.addEventListener('pointerdown', (e) => {
  if (e.target.tagName !== 'CANVAS') return;
  e.target.setPointerCapture(e.pointerId); current = [at(e)]; strokes.push(current); paint();
});
element.addEventListener('pointermove', (e) => { if (current) { current.push(at(e)); paint(); } });
element.addEventListener('pointerup', () => {
  if (!current) return; current = null; props.value = canvas().toDataURL('image/png'); trigger('change');
});
element.addEventListener('click', (e) => {
  if (!e.target.classList.contains('s6-clear')) return;
  strokes.length = 0; paint(); props.value = ''; trigger('change');
});
watch('value', paint);
paint();
""".replace("SIDE", str(PAD_SIDE))


def top3(prediction) -> dict[str, float] | None:
    """A Prediction's top 3 as gr.Label's {label: probability}; None (no bars) under "not a digit / not sure": the
    answering model can be sure of a digit the verdict refuses, and the page must not say no and yes at once."""
    return {str(d): p for d, p in prediction.top3} if prediction.is_digit else None


def verdict(prediction) -> str:
    """One line for the user: the digit, or "not a digit / not sure", what that rests on, and the best guess as
    only that."""
    if not prediction.is_digit:
        if prediction.verdict_probability is None:  # no rejection model: the answering model's own certainty
            basis = f"the model's certainty is {prediction.probability:.0%}, under the {OWN_REJECT_BELOW:.0%} it needs"
        else:
            basis = (f"the rejection model's certainty that this is one digit is {prediction.verdict_probability:.0%}, "
                     f"under the {REJECT_BELOW:.0%} it needs")
        return (f"**{NOT_A_DIGIT_TEXT.capitalize()}**: {basis}. If it is a digit at all, the best guess is "
                f"{prediction.digit}. Draw one digit, larger or clearer.")
    return f"**{prediction.digit}** ({prediction.probability:.1%})"


def seen_image(prediction) -> np.ndarray:
    """The model's (28, 28) input as an enlarged white-on-black uint8 image."""
    big = Image.fromarray((prediction.image.numpy() * 255).round().astype(np.uint8))
    return np.asarray(big.resize((SEEN_PX, SEEN_PX), Image.Resampling.NEAREST))


def as_image(value) -> Image.Image | None:
    """What the pad (a PNG data URL), an Image box (a file path) or a Sketchpad (an editor dict) hands over ->
    one PIL image, or None for nothing. Files are opened by predict.open_image: an unreadable one gets the
    command line's message."""
    if isinstance(value, dict):  # an ImageEditor/Sketchpad value: background + layers flattened into "composite"
        value = value.get("composite")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, np.ndarray):
        return Image.fromarray(value)
    if isinstance(value, str) and value.startswith("data:image/"):
        try:
            return open_image(io.BytesIO(base64.b64decode(value.split(",", 1)[1], validate=True)))
        except (IndexError, binascii.Error):
            raise ImageError("drawing", "the drawing did not arrive as an image") from None
    return open_image(value)


def make_handlers(model, rejector=None):
    """The app's functions for `model` (and the `rejector` whose top probability decides "not a digit"): recognise
    a drawing, recognise an upload (the page), classify (the API)."""

    def recognise(value, nothing: str = NOTHING_DRAWN, blank: str = NOTHING_DRAWN):
        """Page: image -> (top-3 label, what the model saw, message); `nothing`/`blank` say what is missing."""
        try:
            image = as_image(value)
            if image is None:
                return None, None, nothing
            prediction = predict_image(model, image, rejector=rejector)
        except ImageError as exc:
            return None, None, blank if "blank" in exc.reason else f"Could not read that image ({exc.reason})."
        return top3(prediction), seen_image(prediction), verdict(prediction)

    def recognise_upload(value):
        blank = "That image looks blank: no ink stands out from the paper. Upload a photo or scan of one digit."
        return recognise(value, NO_UPLOAD, blank)

    def classify(path: str) -> dict:
        """API: one image file -> predict.py's --json object (verdict, digit, top 3); a bad file -> its message."""
        try:
            # opened by predict.open_image, named by its file
            answer = predict_image(model, path, rejector=rejector).to_dict()
        except ImageError as exc:
            raise gr.Error(f"{Path(exc.path).name}: {exc.reason}") from None
        answer.pop("path")
        return answer

    return recognise, recognise_upload, classify


CONCURRENCY = 1  # requests one event handles at once; more did not pay on 2 cores (docs/speed.md: app under load)


def build_app(checkpoint: str | os.PathLike = DEFAULT_CHECKPOINT, concurrency: int = CONCURRENCY,
              rejector: str | os.PathLike | None = DEFAULT_REJECTOR) -> gr.Blocks:
    """The Gradio Blocks app serving the model stored in `checkpoint` with the rejection model `rejector` (None or
    "none": the model's own top probability decides), `concurrency` requests per event at once."""
    model, payload = load_checkpoint(checkpoint)
    recognise, recognise_upload, classify = make_handlers(model, load_rejector(rejector))
    accuracy = payload.get("history", {}).get("test_acc", [None])[-1]
    with gr.Blocks(title="S6 digit recogniser", analytics_enabled=False) as app:
        gr.Markdown(
            f"# Draw a digit\nA {payload.get('parameters', 0):,}-parameter CNN"
            + (f" ({accuracy:.2f}% on the MNIST test set)" if accuracy else "")
            + ". Draw with the mouse, a pen or a finger (the answer follows each stroke), or upload a photo or "
            "scan of one handwritten digit. Anything that is not one digit gets \"not a digit / not sure\"."
        )
        with gr.Row():
            with gr.Column():
                with gr.Tab("Draw"):
                    pad = gr.HTML("", html_template=PAD_TEMPLATE, css_template=PAD_CSS, js_on_load=PAD_JS,
                                  elem_id="pad")
                with gr.Tab("Upload"):
                    # A file box, not gr.Image: gr.Image decodes the upload itself and shows only "Error" for a
                    # file that is not an image; here predict.py reads it and says what is wrong.
                    upload = gr.File(label="Photo or scan of one digit", type="filepath", elem_id="upload")
                    upload_button = gr.Button("Recognise upload", variant="primary", elem_id="recognise-upload")
            with gr.Column():
                message = gr.Markdown(DRAW_HINT, elem_id="verdict")
                label = gr.Label(label="Top 3 (only when it is a digit)", num_top_classes=3, elem_id="top3")
                seen = gr.Image(label="What the model saw (28x28, enlarged)", interactive=False, height=SEEN_PX,
                                elem_id="seen")
        outputs = [label, seen, message]
        common = dict(concurrency_limit=concurrency, api_visibility="private")
        pad.change(recognise, pad, outputs, trigger_mode="always_last", show_progress="hidden", **common)
        upload_button.click(recognise_upload, upload, outputs, **common)
        upload.upload(recognise_upload, upload, outputs, **common)
        api_input = gr.File(type="filepath", visible=False)  # any file reaches classify, which checks it
        api_output = gr.JSON(visible=False, label="prediction")
        api_input.change(classify, api_input, api_output, api_name="classify", concurrency_limit=concurrency)
    return app


# System fonts only: the default theme would fetch its fonts from Google's servers.
THEME = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def main(argv: list[str] | None = None) -> None:
    """CLI: serve the app on 127.0.0.1 until interrupted."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=7860, help="default 7860")
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="default: checkpoints/s6.pt")
    add_rejector_argument(p)
    p.add_argument("--concurrency", type=int, default=CONCURRENCY,
                   help=f"requests handled at once per event (default {CONCURRENCY})")
    a = p.parse_args(argv)
    try:
        app = build_app(a.checkpoint, a.concurrency, a.rejector)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    app.launch(server_name="127.0.0.1", server_port=a.port, theme=THEME, footer_links=["api"], ssr_mode=False)


if __name__ == "__main__":
    main()
