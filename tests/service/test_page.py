"""The draw-a-digit page in a real browser: Debian's chromium, driven by Playwright.

    apt-get install -y chromium      # never a browser Playwright downloads
    pytest tests/service/test_page.py

Real pointer events draw on the canvas; a real test digit is uploaded; the page must make
no request outside the service and log no console error (a CSP violation is one). The
screenshot, of a slanted 1 and the deskewed digit the network reads, goes to
reports/page.png (docs/img/page.png is a copy of one).
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import numpy as np
import pytest

from clients.uploads import png
from core.feedback import open_store
from service.engine import Engine
from service.schemas import SEEN_HEADER
from tests.helpers import ROOT
from tests.service.browser import (
    NEEDS_CHROMIUM,
    assert_fits_a_phone,
    assert_only_own_script,
    recorded_page,
)

pytestmark = NEEDS_CHROMIUM


@pytest.fixture
def page(browser, server):
    with recorded_page(browser, server + "/", server) as pg:
        yield pg


def _draw(page, points: list[tuple[float, float]]) -> None:
    """Press, move through `points` (canvas fractions), release: real pointer events."""
    box = page.locator("#pad").bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


def _answer(page) -> str:
    # A locator assertion, not wait_for_function: the page's CSP forbids eval().
    from playwright.sync_api import expect

    expect(page.locator("#digit")).not_to_have_text("–", timeout=10_000)
    return page.locator("#digit").text_content()


def _png_pixels(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("L")).astype(float)


def _slant(image: np.ndarray) -> float:
    """The ink's shear, mu11 / mu02 of its image moments (deskewing brings it to 0)."""
    rows, cols = np.indices(image.shape)
    mass = image.sum()
    dy = rows - (image * rows).sum() / mass
    dx = cols - (image * cols).sum() / mass
    return float((image * dx * dy).sum() / (image * dy * dy).sum())


def test_drawing_a_one_shows_1_what_the_model_saw_and_ten_bars(page):
    _draw(page, [(0.5, 0.15), (0.52, 0.5), (0.5, 0.85)])
    assert _answer(page) == "1"
    assert page.locator("#seen").get_attribute("src").startswith("data:image/png;base64,")
    assert page.locator("#bars li").count() == 10
    assert "confidence" in page.locator("#confidence").text_content()
    page.get_by_role("button", name="Clear").click()
    assert page.locator("#digit").text_content() == "–"


def test_a_slanted_stroke_is_shown_deskewed_as_the_network_reads_it(page, server):
    import httpx

    from service.preprocess import to_model_input
    from service.settings import load_settings

    _draw(page, [(0.32, 0.15), (0.5, 0.5), (0.68, 0.85)])  # a 1 leaning well over
    _answer(page)
    shown = _png_pixels(base64.b64decode(
        page.locator("#seen").get_attribute("src").removeprefix("data:image/png;base64,")))
    drawing = base64.b64decode(page.locator("#pad").evaluate(
        "pad => pad.toDataURL('image/png')").removeprefix("data:image/png;base64,"))
    served = httpx.post(server + "/preprocess", files={"image": ("d.png", drawing)})
    assert served.headers[SEEN_HEADER] == "normalised"
    # The page shows what /preprocess answers for the drawing: not the 28x28 model input.
    np.testing.assert_array_equal(shown, _png_pixels(served.content))
    model_input = to_model_input(drawing, load_settings())
    assert np.abs(shown - model_input).max() > 50
    assert _slant(model_input) > 0.3 and abs(_slant(shown)) < 0.1 * _slant(model_input)
    assert page.locator("#seen-normalised").is_visible()
    assert page.locator("#seen-pixels").is_hidden()
    assert page.locator("#seen").get_attribute("alt") == "The 28 by 28 digit the network reads"
    (ROOT / "reports").mkdir(exist_ok=True)
    page.screenshot(path=str(ROOT / "reports/page.png"), full_page=True)


def test_a_model_without_the_normalised_digit_is_captioned_as_its_input(page):
    """A model exported before the graph returned its normalised digit: /preprocess
    answers its 28x28 input, and says so (stood in for here by that header)."""
    def as_input(route):
        response = route.fetch()
        route.fulfill(response=response, headers={**response.headers, SEEN_HEADER: "pixels"})

    page.route("**/preprocess", as_input)
    _draw(page, [(0.5, 0.15), (0.52, 0.5), (0.5, 0.85)])
    _answer(page)
    assert page.locator("#seen-pixels").is_visible()
    assert page.locator("#seen-normalised").is_hidden()
    assert page.locator("#seen").get_attribute("alt") == "The 28 by 28 image the model received"
    assert page.locator("#seen").get_attribute("aria-describedby") == "seen-pixels"


def test_uploading_a_real_test_digit_shows_its_label(page, trained, test_digits, tmp_path):
    x, y = test_digits
    offline = Engine(trained[1] / "model.onnx").probabilities(x[:50].astype(np.float32))
    i = int(np.flatnonzero(offline.argmax(1) == y[:50])[0])  # one the model gets right
    path = tmp_path / "digit.png"
    path.write_bytes(png(x[i]))
    page.get_by_label("Choose an image…").set_input_files(str(path))
    assert _answer(page) == str(y[i])


def test_api_errors_are_shown_as_their_message(page, tmp_path):
    gif = tmp_path / "digit.gif"
    gif.write_bytes(b"GIF89a" + bytes(40))
    page.get_by_label("Choose an image…").set_input_files(str(gif))
    page.wait_for_selector("#error:not([hidden])", timeout=10_000)
    assert "GIF" in page.locator("#error").text_content()
    page.get_by_role("button", name="Clear").click()
    assert page.locator("#error").is_hidden()
    # Chromium logs every 4xx fetch to the console itself: expected here, and only this.
    assert page.errors == ["Failed to load resource: the server responded with a status of "
                           "415 (Unsupported Media Type)"] * 2
    page.errors.clear()


def test_a_wrong_answer_is_corrected_and_stored_as_what_the_model_saw(page):
    from playwright.sync_api import expect

    store = open_store(os.environ["MNIST_FEEDBACK_URL"])
    before = store.rows()[-1].id if store.count() else 0
    assert page.locator("#correct").is_hidden()  # nothing to correct yet
    _draw(page, [(0.5, 0.15), (0.52, 0.5), (0.5, 0.85)])
    shown = _answer(page)
    truth = page.get_by_role("group", name="Wrong? It is a …")
    truth.get_by_role("button", name="7", exact=True).click()
    expect(page.locator("#stored")).to_have_text("Stored: it is a 7. Thank you.",
                                                 timeout=10_000)
    (row,) = store.rows(after_id=before)
    store.close()
    assert (row.truth, row.answered) == (7, int(shown))
    assert row.pixels.shape == (28, 28) and row.pixels.max() > 0  # the 28x28 input
    page.get_by_role("button", name="Clear").click()
    assert page.locator("#correct").is_hidden()


def test_a_correction_that_is_not_stored_says_why(page):
    from playwright.sync_api import expect

    page.route("**/feedback", lambda route: route.fulfill(
        status=503, headers={"Retry-After": "5"}, content_type="application/json",
        body='{"error": "the feedback database is unavailable"}'))
    _draw(page, [(0.5, 0.15), (0.52, 0.5), (0.5, 0.85)])
    _answer(page)
    page.get_by_role("button", name="3", exact=True).click()
    expect(page.locator("#stored")).to_have_text(
        "Not stored: the feedback database is unavailable", timeout=10_000)
    assert page.errors == ["Failed to load resource: the server responded with a status of "
                           "503 (Service Unavailable)"]
    page.errors.clear()


def test_keyboard_and_phone(page):
    # The controls are reachable with Tab, the pad clears with Escape, the answer is live.
    assert page.locator("#result").get_attribute("aria-live") == "polite"
    _draw(page, [(0.3, 0.3), (0.7, 0.3), (0.45, 0.85)])  # a 7
    _answer(page)
    page.locator("#pad").focus()
    page.keyboard.press("Escape")
    assert page.locator("#digit").text_content() == "–"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "clear"
    assert_fits_a_phone(page)


def test_the_page_works_offline_under_its_csp(page, server):
    assert_only_own_script(page, server + "/", server + "/page/app.js")


def test_the_docs_page_loads_without_google_tag_manager(browser, server):
    pg = browser.new_page()
    requests: list[str] = []
    pg.on("request", lambda r: requests.append(r.url))
    pg.goto(server + "/docs")
    pg.wait_for_selector(".swagger-ui .info", timeout=10_000)
    assert requests and all(u.startswith(server) for u in requests), requests
    pg.close()


def test_a_screenshot_for_the_docs_exists():
    assert Path(ROOT / "docs/img/page.png").stat().st_size > 10_000
