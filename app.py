"""Draw a digit: a Gradio app around the shipped checkpoint. `python app.py [--port 7860] [--checkpoint PATH]`.

A sketchpad (mouse or finger) and an upload box for a photo or scan; it shows the top-3 digits with their
probabilities and the 28x28 image the model actually saw. Every image goes through predict.py's
preprocessing (one code path for the command line, the app and its API). It runs offline on 127.0.0.1:
Gradio's analytics are off and the theme uses the system's fonts, so the page asks nothing of the internet.

API: `gradio_client.Client(url).predict(handle_file("digit.png"), api_name="/classify")` returns
{"label": "7", "confidences": [{"label": "7", "confidence": 0.99}, ...]} (top 3).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no calls home

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from checkpoint import DEFAULT_CHECKPOINT, load_checkpoint  # noqa: E402
from predict import ImageError, open_image, predict_image  # noqa: E402

UNSURE_BELOW = 0.70  # a top probability under 70% is shown as a guess between the top two, not as an answer
SEEN_PX = 224  # the 28x28 model input is shown enlarged 8x, nearest-neighbour so each pixel stays visible
DRAW_HINT = "Draw one digit, large and centred or not: the app crops and centres it the way MNIST was made."


def top3(prediction) -> dict[str, float]:
    """A Prediction's top 3 as gr.Label's {label: probability}."""
    return {str(d): p for d, p in prediction.top3}


def verdict(prediction) -> str:
    """One line for the user: the answer, or that the model is unsure between its top two."""
    (d1, p1), (d2, p2) = prediction.top3[:2]
    if p1 < UNSURE_BELOW:
        return f"**Not sure**: maybe {d1} ({p1:.0%}), maybe {d2} ({p2:.0%}). Try writing it larger or clearer."
    return f"**{d1}** ({p1:.1%})"


def seen_image(prediction) -> np.ndarray:
    """The model's (28, 28) input as an enlarged white-on-black uint8 image."""
    big = Image.fromarray((prediction.image.numpy() * 255).round().astype(np.uint8))
    return np.asarray(big.resize((SEEN_PX, SEEN_PX), Image.Resampling.NEAREST))


def as_image(value) -> Image.Image | None:
    """What a Sketchpad (editor dict), an Image box or a file path hands over -> one PIL image, or None.

    Files are opened by predict.open_image, so an unreadable upload gets the command line's message.
    """
    if isinstance(value, dict):  # Sketchpad: background + layers flattened into "composite"
        value = value.get("composite")
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        return Image.fromarray(value)
    return open_image(value)


def make_handlers(model):
    """The app's two functions for `model`: recognise (for the page) and classify (the API)."""

    def recognise(value):
        """Page: image -> (top-3 label, what the model saw, message)."""
        nothing = "Nothing drawn yet: " + DRAW_HINT
        try:
            image = as_image(value)
            if image is None:
                return None, None, nothing
            prediction = predict_image(model, image)
        except ImageError as exc:
            return None, None, nothing if "blank" in str(exc) else f"Could not read that image ({exc.reason})."
        return top3(prediction), seen_image(prediction), verdict(prediction)

    def classify(path: str) -> dict[str, float]:
        """API: one image file -> the digit with its top-3 confidences; a bad file -> predict.py's message."""
        try:
            return top3(predict_image(model, path))  # opened by predict.open_image, named by its file
        except ImageError as exc:
            raise gr.Error(f"{Path(exc.path).name}: {exc.reason}") from None

    return recognise, classify


CONCURRENCY = 1  # requests one event handles at once; more did not pay on 2 cores (docs/speed.md: app under load)


def build_app(checkpoint: str | os.PathLike = DEFAULT_CHECKPOINT, concurrency: int = CONCURRENCY) -> gr.Blocks:
    """The Gradio Blocks app serving the model stored in `checkpoint`, `concurrency` requests per event at once."""
    model, payload = load_checkpoint(checkpoint)
    recognise, classify = make_handlers(model)
    accuracy = payload.get("history", {}).get("test_acc", [None])[-1]
    with gr.Blocks(title="S6 digit recogniser", analytics_enabled=False) as app:
        gr.Markdown(
            f"# Draw a digit\nA {payload.get('parameters', 0):,}-parameter CNN"
            + (f" ({accuracy:.2f}% on the MNIST test set)" if accuracy else "")
            + ". Draw with the mouse or a finger, or upload a photo or scan of one handwritten digit."
        )
        with gr.Row():
            with gr.Column():
                with gr.Tab("Draw"):
                    pad = gr.Sketchpad(
                        label="Draw here", type="numpy", canvas_size=(400, 400), fixed_canvas=True, layers=False,
                        brush=gr.Brush(colors=["#000000"], default_size=18, color_mode="fixed"), elem_id="pad",
                    )
                    draw_button = gr.Button("Recognise drawing", variant="primary", elem_id="recognise-drawing")
                with gr.Tab("Upload"):
                    upload = gr.Image(label="Photo or scan", type="filepath", sources=["upload", "clipboard"])
                    upload_button = gr.Button("Recognise upload", variant="primary")
            with gr.Column():
                message = gr.Markdown(DRAW_HINT, elem_id="verdict")
                label = gr.Label(label="Top 3", num_top_classes=3, elem_id="top3")
                seen = gr.Image(label="What the model saw (28x28, enlarged)", interactive=False, height=SEEN_PX,
                                elem_id="seen")
        outputs = [label, seen, message]
        common = dict(concurrency_limit=concurrency, api_visibility="private")
        draw_button.click(recognise, pad, outputs, **common)
        upload_button.click(recognise, upload, outputs, **common)
        upload.upload(recognise, upload, outputs, **common)
        api_input = gr.File(type="filepath", visible=False)  # any file reaches classify, which checks it
        api_output = gr.Label(num_top_classes=3, visible=False, label="digit")
        api_input.change(classify, api_input, api_output, api_name="classify", concurrency_limit=concurrency)
        # Gradio's sketchpad opens, and comes back from "Clear canvas", with no tool chosen: pick the brush.
        pick_brush = "() => { setTimeout(() => document.querySelector('#pad button[aria-label=Brush]')?.click(), 300) }"
        app.load(None, js=pick_brush)
        pad.clear(None, js=pick_brush, api_visibility="private")
    return app


# System fonts only: the default theme would fetch its fonts from Google's servers.
THEME = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def main(argv: list[str] | None = None) -> None:
    """CLI: serve the app on 127.0.0.1 until interrupted."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=7860, help="default 7860")
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="default: checkpoints/s6.pt")
    p.add_argument("--concurrency", type=int, default=CONCURRENCY,
                   help=f"requests handled at once per event (default {CONCURRENCY})")
    a = p.parse_args(argv)
    try:
        app = build_app(a.checkpoint, a.concurrency)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    app.launch(server_name="127.0.0.1", server_port=a.port, theme=THEME, footer_links=["api"], ssr_mode=False)


if __name__ == "__main__":
    main()
