"""The answer-quality page (/monitoring/view) in a real browser, against the real service.

    pytest tests/service/test_monitoring_page.py

A fresh server of the trained model (its reference profile included): the page polls
/monitoring and must draw it with no console error and no request outside the service.
In-distribution test digits make it say "ok"; a stream of one class (a digit mix far from
the reference's) makes it say "drift". The tests run in file
order on one server, whose counts are cumulative: the empty service first. The screenshot
goes to reports/monitoring.png (docs/img/monitoring.png is a copy of one).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from core.profile import MIN_ANSWERS, SIGNALS
from tests.helpers import ROOT
from tests.service.browser import (
    NEEDS_CHROMIUM,
    assert_fits_a_phone,
    assert_only_own_script,
    recorded_page,
)

pytestmark = NEEDS_CHROMIUM
VIEW = "/monitoring/view?every=1"  # polls every second: the tests wait less
WAIT_MS = 30_000  # a poll, and the workers' pending answers flushed, on a loaded machine
# Chromium logs every failed fetch to the console itself: expected where a test makes one.
FAILED_503 = "Failed to load resource: the server responded with a status of 503 " \
             "(Service Unavailable)"


@pytest.fixture
def view(browser, metrics_server):
    """The page on a server of its own: its counts start at zero with this module."""
    with recorded_page(browser, metrics_server + VIEW, metrics_server) as page:
        yield page


def _post_pixels(url: str, pixels: np.ndarray) -> int:
    body = json.dumps({"pixels": pixels.astype(int).tolist()}).encode()
    request = urllib.request.Request(url, data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _serve(base: str, digits: np.ndarray) -> list[int]:
    """Each digit to /predict_pixels, 8 at a time: their status codes."""
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda d: _post_pixels(base + "/predict_pixels", d), digits))


def _expect_text(page, selector: str, text: str) -> None:
    """What the page says there, within a few polls (the CSP forbids wait_for_function)."""
    from playwright.sync_api import expect

    expect(page.locator(selector)).to_have_text(text, timeout=WAIT_MS)


def _expect_status(page, status: str) -> None:
    _expect_text(page, "#status", status)


def _drifting_signals(page) -> list[str]:
    return page.locator("#drift-table tbody tr.over th").all_text_contents()


def test_an_empty_service_shows_too_few_answers_against_its_reference(view):
    _expect_status(view, "too few answers")
    assert view.locator("#answers").text_content() == "0"
    assert f"fewer than {MIN_ANSWERS}" in view.locator("#status-detail").text_content()
    # The plots are drawn, the reference beside zero live answers, and said in words.
    assert view.locator("#mix-plot rect.reference").count() == 10
    assert view.locator("#mix-table tbody tr").count() == 10
    assert "reference" in view.locator("#mix-plot").get_attribute("aria-label")
    assert view.locator("#hist-plot rect.reference").count() > 0
    assert view.locator("#drift-table").is_hidden()
    assert "No scores" in view.locator("#drift-empty").text_content()


def test_in_distribution_digits_are_ok_and_a_shifted_stream_is_drift(view, metrics_server,
                                                                     test_digits):
    x = test_digits[0]
    served = 2 * MIN_ANSWERS
    assert set(_serve(metrics_server, x[:served])) == {200}
    assert set(_serve(metrics_server, np.zeros((3, 28, 28)))) == {422}  # blank: rejected
    _expect_text(view, "#answers", str(served))  # every answer, once
    _expect_text(view, "#rejected", "3")
    _expect_text(view, "#status", "ok")
    rows = view.locator("#drift-table tbody tr th").all_text_contents()
    assert rows == list(SIGNALS)
    assert _drifting_signals(view) == []

    # A class mix far from the reference's: only ones (a form field of years, say).
    ones = np.resize(x[test_digits[1] == 1], (3 * MIN_ANSWERS, 28, 28))
    assert set(_serve(metrics_server, ones)) == {200}
    _expect_text(view, "#answers", str(served + len(ones)))
    _expect_status(view, "drift")
    assert "digit_mix" in _drifting_signals(view)
    assert "digit_mix" in view.locator("#status-detail").text_content()
    # The digit mix's score: a history that ends above the dashed threshold line.
    mix = view.locator("#drift-table tbody tr", has_text="digit_mix")
    assert "over the last" in mix.locator("svg").get_attribute("aria-label")
    assert mix.locator("circle.over").count() == 1
    ones_row = view.locator("#mix-table tbody tr").nth(1).locator("td")
    live, reference = (float(t.rstrip(" %")) for t in ones_row.all_text_contents())
    assert live > 2 * reference
    view.locator("#hist-choice").select_option("ink")  # ones: less ink than the mix
    assert view.locator("#hist-name").text_content().startswith("ink")
    assert "≤ 0.04" in view.locator("#hist-plot").get_attribute("aria-label")
    (ROOT / "reports").mkdir(exist_ok=True)
    view.screenshot(path=str(ROOT / "reports/monitoring.png"), full_page=True)


def test_errors_are_shown_and_polling_goes_on(view):
    _expect_status(view, "drift")  # what the earlier tests served
    view.route("**/monitoring", lambda route: route.fulfill(
        status=503, content_type="application/json", body='{"error": "overloaded, retry"}'))
    error = view.locator("#error")
    from playwright.sync_api import expect

    expect(error).to_contain_text("overloaded, retry", timeout=WAIT_MS)
    assert view.locator("#status").text_content() == "drift"  # the last answer stays
    view.unroute("**/monitoring")
    expect(error).to_be_hidden(timeout=WAIT_MS)
    assert view.errors and set(view.errors) == {FAILED_503}
    view.errors.clear()


def _answering(page, change) -> None:
    """/monitoring's real answers, changed by `change` (a dict -> None) on their way."""
    def handle(route) -> None:
        body = route.fetch().json()
        change(body)
        route.fulfill(content_type="application/json", body=json.dumps(body))

    page.route("**/monitoring", handle)


def test_no_reference_shows_live_data_and_monitoring_off_says_so(view):
    # States of other servers (a model registered without a profile, MNIST_MONITORING=0),
    # made from this one's real answer.
    def unprofiled(body: dict) -> None:
        body["reference"] = None
        body["drift"] = {**body["drift"], "status": "no reference", "signals": {}}

    _answering(view, unprofiled)
    _expect_status(view, "no reference")
    assert "no reference profile" in view.locator("#status-detail").text_content()
    assert view.locator("#mix-plot rect.live").count() == 10
    assert view.locator("#mix-plot rect.reference").count() == 0
    assert view.locator(".reference-legend").first.is_hidden()
    assert view.locator("#drift-table").is_hidden()
    view.unroute("**/monitoring")
    _answering(view, lambda body: body.update(monitoring="off"))
    _expect_status(view, "monitoring off")
    assert view.locator("#answers").text_content() == "–"


def test_without_a_challenger_or_feedback_the_panels_say_so(view):
    _expect_status(view, "drift")  # what the earlier tests served: a real answer
    assert "No challenger" in view.locator("#challenger-empty").text_content()
    assert view.locator("#challenger-body").is_hidden()
    assert "No feedback yet" in view.locator("#feedback-empty").text_content()
    assert view.locator("#feedback-body").is_hidden()


def _evidence(body: dict) -> None:
    """A challenger that answers 4 where the champion says 9, and feedback on both."""
    disagreements = [[0] * 10 for _ in range(10)]
    disagreements[9][4] = 30
    body["shadow"] = {"challenger_version": "v2challenger", "share": 0.25, "answers": 600,
                      "agreement": 0.95, "disagreements": disagreements, "dropped": 7,
                      "latency_ratio": 1.08}

    def role(right: int, wrong: int) -> dict:
        confusion = [[0] * 10 for _ in range(10)]
        confusion[7][7], confusion[7][1] = right, wrong
        return {"answers": right + wrong, "accuracy": right / (right + wrong),
                "confusion": confusion}

    body["feedback"] = {"champion": role(6, 4), "challenger": role(9, 1)}


def test_a_challenger_and_its_feedback_accuracy_are_drawn(view):
    _answering(view, _evidence)
    _expect_text(view, "#challenger-version", "v2challenger")
    said = {key: view.locator(f"#{key}").text_content() for key in (
        "shadow-share", "shadow-answers", "shadow-agreement", "shadow-dropped",
        "shadow-latency", "feedback-champion", "feedback-challenger")}
    assert said == {"shadow-share": "25.0 %", "shadow-answers": "600",
                    "shadow-agreement": "95.0 %", "shadow-dropped": "7",
                    "shadow-latency": "1.08×", "feedback-champion": "60.0 % of 10",
                    "feedback-challenger": "90.0 % of 10"}
    assert view.locator("#challenger-empty").text_content() == ""
    # Disagreements by the champion's digit: all of them at 9, 30 of 600 images.
    assert "9: 5.0 %" in view.locator("#disagree-plot").get_attribute("aria-label")
    matrix = view.locator("#disagree-table tbody tr").nth(9).locator("td")
    assert matrix.all_text_contents()[4] == "30"
    # Accuracy per true digit, champion against challenger, and both confusion matrices.
    assert "7: 60.0 % (challenger 90.0 %)" in \
        view.locator("#feedback-plot").get_attribute("aria-label")
    assert view.locator("#feedback-plot rect.reference").count() == 10
    for table, wrong in (("#confusion-champion", "4"), ("#confusion-challenger", "1")):
        assert view.locator(f"{table} tbody tr").nth(7).locator("td").nth(1) \
            .text_content() == wrong
    view.locator("#challenger-body details").evaluate("d => d.open = true")
    view.locator("#feedback-body details").evaluate("d => d.open = true")
    view.screenshot(path=str(ROOT / "reports/monitoring-shadow.png"), full_page=True)


def test_the_draw_page_links_here_and_back(browser, metrics_server):
    with recorded_page(browser, metrics_server + "/", metrics_server) as page:
        page.get_by_role("link", name="Answer quality").click()
        page.wait_for_url(metrics_server + "/monitoring/view")
        assert page.get_by_role("heading", level=1).text_content() == "Answer quality"
        page.get_by_role("link", name="Draw a digit").click()
        page.wait_for_url(metrics_server + "/")


def test_headings_text_alternatives_keyboard_and_phone(view):
    _expect_status(view, "drift")
    assert view.locator("#summary").get_attribute("aria-live") == "polite"
    headings = view.get_by_role("heading", level=2).all_text_contents()
    assert headings[:2] == ["Status", "Predicted digits"]
    # Every plot is an image with its numbers in words.
    for plot in view.locator("svg[role=img]").all():
        assert "%" in plot.get_attribute("aria-label") or \
            "score" in plot.get_attribute("aria-label")
    # Tab reaches the link back, /monitoring, the histogram choice and the numbers.
    reached = []
    for _ in range(6):
        view.keyboard.press("Tab")
        reached.append(view.evaluate("document.activeElement.id"
                                     " || document.activeElement.textContent.trim()"))
    assert reached[:4] == ["← Draw a digit", "/monitoring", "The numbers", "hist-choice"]
    assert_fits_a_phone(view)


def test_the_page_runs_under_the_csp_with_no_inline_script(view, metrics_server):
    assert_only_own_script(view, metrics_server + "/monitoring/view",
                           metrics_server + "/page/monitoring.js")


def test_a_screenshot_for_the_docs_exists():
    assert Path(ROOT / "docs/img/monitoring.png").stat().st_size > 10_000
