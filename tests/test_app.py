"""The Gradio app, started as a user starts it: drawn on in a real browser, and called through its API."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from conftest import missing
from PIL import Image

from datasets import mnist_split

pytestmark = pytest.mark.slow  # a real browser and a real server

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"  # Debian's package; never a browser downloaded by playwright
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOT = ROOT / "runs" / "app.png"  # git-ignored; docs/app.png is a copy of it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url():
    """`python app.py --port N` in its own process; its URL once it answers."""
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"app.py did not start:\n{proc.stdout.read()}")
            time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def stroke_paths(digit: str) -> list[list[tuple[float, float]]]:
    """Pen strokes of a hand-drawn `digit` in unit coordinates (x right, y down)."""
    if digit == "1":
        return [[(0.45, 0.08), (0.5, 0.5), (0.52, 0.92)]]
    if digit == "0":
        t = np.linspace(0, 2 * np.pi, 36)
        return [list(zip(0.5 + 0.28 * np.sin(t), 0.5 - 0.42 * np.cos(t)))]
    if digit == "7":
        return [[(0.15, 0.1), (0.85, 0.1), (0.6, 0.5), (0.42, 0.92)]]
    raise ValueError(digit)


PLACEMENTS = {  # name -> (size as a share of the canvas, centre x, centre y)
    "large": (0.8, 0.5, 0.5),
    "small": (0.3, 0.5, 0.5),
    "off-centre": (0.4, 0.25, 0.3),
}


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        missing("the browser", f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (Debian's package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


FINAL_VERDICT = r"/^([0-9] \(|\*?\*?Not a digit|Nothing drawn yet|Could not read|That image looks blank|No image)/"


def wait_for_verdict(page, before: str, expected_start: str) -> str:
    """Wait until the verdict differs from `before`, is final and starts with `expected_start` -> the verdict."""
    from playwright.sync_api import TimeoutError

    try:
        return page.wait_for_function(
            "([before, start]) => { const t = document.querySelector('#verdict').innerText.trim(); "
            "return t !== before.trim() && t.startsWith(start) && FINAL.test(t) && t }".replace("FINAL", FINAL_VERDICT),
            arg=[before, expected_start], timeout=60_000).json_value()
    except TimeoutError:
        shot = SCREENSHOT.with_name("app-failure.png")
        page.screenshot(path=shot)
        pytest.fail(f"waited 60 s for a verdict starting {expected_start!r}; the page says "
                    f"{page.locator('#verdict').inner_text()!r} (screenshot: {shot})")


def draw(page, strokes: list[list[tuple[float, float]]], box: dict, size: float, cx: float, cy: float) -> None:
    """Draw `strokes` (unit coordinates) with the mouse, scaled to `size` of the pad and centred at (cx, cy)."""
    for path in strokes:
        points = [(box["x"] + box["width"] * (cx + size * (x - 0.5)),
                   box["y"] + box["height"] * (cy + size * (y - 0.5))) for x, y in path]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=6)
        page.mouse.up()


def clear(page) -> None:
    page.wait_for_timeout(300)  # the last answer's progress overlay has gone
    before = page.locator("#verdict").inner_text()
    page.locator("#pad .s6-clear").click()
    wait_for_verdict(page, before, "Nothing drawn yet")  # a cleared pad gets a message, never an exception


LETTER_A = [[(0.15, 0.95), (0.5, 0.05), (0.85, 0.95)], [(0.3, 0.6), (0.7, 0.6)]]


def test_digits_drawn_with_the_mouse_are_answered_live_in_a_real_browser(app_url, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(app_url, wait_until="networkidle")
    box = page.locator("#pad canvas").bounding_box()
    results = {}
    for digit in ("1", "0", "7"):
        for placement, (size, cx, cy) in PLACEMENTS.items():
            clear(page)
            before = page.locator("#verdict").inner_text()
            draw(page, stroke_paths(digit), box, size, cx, cy)  # no button: the answer follows the stroke
            results[digit, placement] = wait_for_verdict(page, before, "")
            if (digit, placement) == ("7", "large"):
                page.wait_for_selector("#seen img")
                SCREENSHOT.parent.mkdir(exist_ok=True)
                page.screenshot(path=SCREENSHOT)
    wrong = {k: v for k, v in results.items() if not v.startswith(k[0] + " (")}
    assert not wrong, f"misread drawings (digit, placement) -> page said: {wrong}"

    # A stroke that starts on the pad's very edge (where a drawing square with a margin would drop it) and one
    # that leaves the pad are kept: a 1 drawn from the top edge to below the bottom edge is read as a 1.
    clear(page)
    before = page.locator("#verdict").inner_text()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + 1)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.52, box["y"] + box["height"] + 40, steps=12)
    page.mouse.up()
    assert wait_for_verdict(page, before, "").startswith("1 (")

    # A letter is not a digit: the page says so, what it rests on, and shows no digit's bar beside it.
    clear(page)
    before = page.locator("#verdict").inner_text()
    draw(page, LETTER_A, box, 0.8, 0.5, 0.5)
    said = wait_for_verdict(page, before, "")
    assert said.startswith("Not a digit") and "rejection model's certainty" in said and "best guess is" in said, said
    page.wait_for_timeout(300)  # the label box has been redrawn with the same answer
    assert "%" not in page.locator("#top3").inner_text()  # no confident digit under a refusal

    # The Upload tab: a file that is not an image, and a blank page, each get their own words.
    page.get_by_role("tab", name="Upload").click()
    notes, blank = tmp_path / "notes.png", tmp_path / "blank.png"
    notes.write_text("this is not an image")
    Image.new("L", (64, 64), 255).save(blank)
    for path, expected in ((blank, "That image looks blank"), (notes, "Could not read that image")):
        before = page.locator("#verdict").inner_text()
        page.locator("#upload input[type=file]").set_input_files(str(path))  # the upload event answers
        assert wait_for_verdict(page, before, "").startswith(expected)
        page.locator("#upload button[aria-label='Clear']").first.click()
    hosts = {urlparse(u).hostname for u in requests if urlparse(u).scheme in ("http", "https", "ws", "wss")}
    assert hosts <= {"127.0.0.1", "localhost"}, f"the page reached beyond this machine: {sorted(hosts)}"
    assert SCREENSHOT.read_bytes()[:4] == b"\x89PNG"
    page.close()


def test_classify_api_reads_real_mnist_digits(app_url, data_dir, tmp_path):
    from gradio_client import Client, handle_file

    test = mnist_split(False, data_dir, subset=20)
    client = Client(app_url, verbose=False)
    hits = 0
    for i, (digit, label) in enumerate(zip(test.data.numpy(), test.targets.tolist())):
        path = tmp_path / f"{i}.png"
        Image.fromarray(255 - digit).resize((112, 112), Image.Resampling.BICUBIC).save(path)  # ink on paper
        result = client.predict(handle_file(path), api_name="/classify")
        assert result["top3"][0][0] == result["digit"] and len(result["top3"]) == 3
        assert 0 < result["probability"] <= 1 and result["is_digit"] == (result["verdict"] == str(result["digit"]))
        hits += result["verdict"] == str(label)
    assert hits >= 19  # the shipped model reads at least 19 of these 20 test digits
    Image.new("L", (64, 64), 255).save(tmp_path / "blank.png")
    with pytest.raises(Exception, match="blank.png: image looks blank"):
        client.predict(handle_file(tmp_path / "blank.png"), api_name="/classify")


def test_api_answers_a_non_image_upload_with_predict_pys_message(app_url, tmp_path, capsys):
    from gradio_client import Client, handle_file

    import predict

    notes = tmp_path / "notes.png"
    notes.write_text("this is not an image")
    assert predict.main([str(notes)]) == 1
    cli_reason = capsys.readouterr().err.splitlines()[0].split(": ", 2)[2]  # "error: <path>: <reason>"
    with pytest.raises(Exception) as info:
        Client(app_url, verbose=False).predict(handle_file(notes), api_name="/classify")
    message = str(info.value)
    assert "notes.png: not a readable image (UnidentifiedImageError" in message and "verbose" not in message
    assert cli_reason.split(" (")[0] in message


def letter_a() -> Image.Image:
    """LETTER_A drawn in black on white, as a photographed capital A."""
    from PIL import ImageDraw

    image = Image.new("L", (200, 200), 255)
    pen = ImageDraw.Draw(image)
    for stroke in LETTER_A:
        pen.line([(20 + 160 * x, 20 + 160 * y) for x, y in stroke], fill=0, width=14)
    return image


def test_app_handlers_say_when_nothing_is_drawn_uploaded_or_sure():
    import app
    import predict
    from checkpoint import load_checkpoint

    model, rejector = load_checkpoint(app.DEFAULT_CHECKPOINT)[0], predict.load_rejector()
    recognise, recognise_upload, _ = app.make_handlers(model, rejector)
    label, seen, message = recognise(None)
    assert label is None and seen is None and message.startswith("Nothing drawn yet")
    assert recognise("")[2].startswith("Nothing drawn yet")  # a cleared pad
    empty = {"composite": np.full((400, 400, 4), 255, np.uint8), "background": None, "layers": []}
    label, seen, message = recognise(empty)
    assert label is None and message.startswith("Nothing drawn yet")
    assert recognise_upload(None)[2].startswith("No image yet")
    blank = Image.new("L", (64, 64), 255)
    assert recognise_upload(blank)[2].startswith("That image looks blank")
    ambiguous = Image.new("L", (100, 100), 255)
    ambiguous.paste(0, (45, 10, 55, 90))  # a bar: a 1, or the stem of a 7 or 4
    for image in (ambiguous, letter_a()):
        label, seen, message = recognise(image)
        assert seen.shape == (app.SEEN_PX, app.SEEN_PX)
        prediction = predict.predict_image(model, image, rejector=rejector)
        assert message.startswith("**Not a digit") == (prediction.verdict_probability < predict.REJECT_BELOW)
        if prediction.is_digit:  # the answering model's top 3 as bars
            assert label == {str(d): p for d, p in prediction.top3}
        else:  # no bars, the rejection model's certainty named, the digit only as a guess
            assert label is None and f"{prediction.verdict_probability:.0%}" in message
            assert f"the best guess is {prediction.digit}" in message
    assert not predict.predict_image(model, letter_a(), rejector=rejector).is_digit  # both branches were met
