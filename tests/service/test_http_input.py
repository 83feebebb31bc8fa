"""service/http_input.py: size limits, multipart files and validated JSON, through the
service's ASGI app in process and on the reader functions themselves.

    pytest tests/service/test_http_input.py
"""

from __future__ import annotations

import asyncio
import http.server
import threading

import pytest
from starlette.requests import Request

from clients.uploads import png
from service.errors import InputError
from service.http_input import read_files, read_pixels
from service.settings import Settings
from tests.helpers import assert_error


def _body_limit() -> int:
    from service.service import SETTINGS

    return SETTINGS.max_body_bytes


def test_predict_rejects_body_over_limit(client):
    over = bytes(_body_limit() + 1)
    assert_error(client.post("/predict", files={"image": ("d.png", b"\x89PNG" + over)}),
                  413, "limit")


def test_predict_rejects_chunked_body_over_limit_without_content_length(client):
    def chunks():
        head = b"--x\r\nContent-Disposition: form-data; name=\"image\"; filename=\"d.png\"\r\n\r\n"
        yield head + b"\x89PNG"
        for _ in range(_body_limit() // (1 << 20) + 1):
            yield bytes(1 << 20)

    resp = client.post("/predict", content=chunks(),
                       headers={"content-type": "multipart/form-data; boundary=x"})
    assert "content-length" not in resp.request.headers
    assert_error(resp, 413, "limit")


def test_predict_wants_exactly_one_image(client, test_digits):
    good = png(test_digits[0][0])
    assert_error(client.post("/predict", files=[("image", ("a.png", good)),
                                                 ("image", ("b.png", good))]), 400, "at most 1")


def _raw_part(name: str, headers: str, data: bytes) -> dict:
    body = (f"--b0undary\r\nContent-Disposition: form-data; name=\"{name}\"\r\n{headers}"
            "\r\n").encode() + data + b"\r\n--b0undary--\r\n"
    return dict(content=body, headers={"content-type": "multipart/form-data; boundary=b0undary"})


def test_an_image_part_without_a_filename_is_still_a_file(client, test_digits):
    """RFC 7578: a filename SHOULD be sent, not must; the part's Content-Type says "file"."""
    good = png(test_digits[0][0])
    resp = client.post("/predict", **_raw_part("image", "Content-Type: image/png\r\n", good))
    assert resp.status_code == 200, resp.text
    # Without a filename and without an image type, a part is text, as before.
    assert_error(client.post("/predict", **_raw_part("image", "", good)), 400, "got text")


def test_predict_never_fetches_a_url_sent_as_text(client):
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/digit.png"
        assert_error(client.post("/predict", files={"image": (None, url)}), 400,
                      "URLs are not fetched")
        assert_error(client.post("/predict", data={"image": url}), 415)
        assert_error(client.post("/predict", content=url.encode(),
                                  headers={"content-type": "text/plain"}), 415)
    finally:
        server.shutdown()
        server.server_close()
    assert hits == []


def _grid(value):
    return [[value] * 28 for _ in range(28)]


BAD_PIXELS = {
    "wrong_rows": ({"pixels": [[0] * 28] * 27}, "at least 28"),
    "wrong_cols": ({"pixels": [[0] * 29] * 28}, "at most 28"),
    "over_255": ({"pixels": _grid(256)}, "less than or equal to 255"),
    "negative": ({"pixels": _grid(-1)}, "greater than or equal to 0"),
    "floats": ({"pixels": _grid(3.5)}, "valid integer"),
    "strings": ({"pixels": _grid("7")}, "valid integer"),
    "booleans": ({"pixels": _grid(True)}, "valid integer"),
    "missing": ({}, "pixels"),
    "extra_field": ({"pixels": _grid(0), "x": 1}, "extra"),
}


@pytest.mark.parametrize("case", sorted(BAD_PIXELS))
def test_predict_pixels_validates_strictly(client, case):
    payload, text = BAD_PIXELS[case]
    assert_error(client.post("/predict_pixels", json=payload), 422, text)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_predict_pixels_rejects_non_finite_numbers(client, token):
    rows = ",".join(["[" + ",".join([token] + ["0"] * 27) + "]"] + ["[" + ",".join(["0"] * 28)
                                                                    + "]"] * 27)
    resp = client.post("/predict_pixels", content=f'{{"pixels": [{rows}]}}'.encode(),
                       headers={"content-type": "application/json"})
    assert_error(resp, 422)


@pytest.mark.parametrize("kwargs, status", [
    (dict(content=b"{not json", headers={"content-type": "application/json"}), 422),
    (dict(content=b"", headers={"content-type": "application/json"}), 400),
    (dict(files={"pixels": ("p.json", b"\x89PNG\x00\xff")}), 415),
])
def test_predict_pixels_rejects_bad_bodies(client, kwargs, status):
    assert_error(client.post("/predict_pixels", **kwargs), status)


def _request(body: bytes, content_type: str, chunk: int = 1 << 16) -> Request:
    """A POST whose body arrives in `chunk`-byte ASGI messages, with its Content-Length."""
    messages = [{"type": "http.request", "body": body[i:i + chunk],
                 "more_body": i + chunk < len(body)} for i in range(0, len(body), chunk)]

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    headers = [(b"content-type", content_type.encode()),
               (b"content-length", str(len(body)).encode())]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers,
                    "query_string": b""}, receive)


def _form(*parts: tuple[str, str | None, bytes]) -> Request:
    """A multipart body of (field, filename or None for text, bytes) parts."""
    body = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"'
                                                     if filename else "")
        body += (f"--b0undary\r\nContent-Disposition: {disposition}\r\n\r\n").encode() \
            + data + b"\r\n"
    return _request(body + b"--b0undary--\r\n", "multipart/form-data; boundary=b0undary")


def _status(client, reader, *args) -> int:
    """200, or the status of the error the reader raised. It runs on the in-process app's
    event loop (the client's portal): asyncio.run would meet that loop's thread, which
    gevent, brought in by Locust, makes look like a running loop."""
    try:
        client.portal.call(reader, *args)
    except InputError as exc:
        return exc.status
    return 200


def test_the_multipart_limits_are_the_settings(client, test_digits):
    """Text fields and their size are bounded by MNIST_MAX_FORM_FIELDS and
    MNIST_MAX_FORM_PART_BYTES: the reader takes them from the settings it is given."""
    image = ("image", "d.png", png(test_digits[0][0]))
    notes = [("note", None, b"x" * 100), ("note2", None, b"y")]

    def status(limits: Settings) -> int:
        return _status(client, read_files, _form(image, *notes), "image", 1, limits)

    assert status(Settings()) == 200
    assert status(Settings(max_form_fields=1)) == 400
    assert status(Settings(max_form_part_bytes=50)) == 400


def test_the_body_limit_is_the_setting(client, test_digits):
    image = ("image", "d.png", png(test_digits[0][0]))
    size = int(dict(_form(image).headers)["content-length"])

    def status(limit: int) -> int:
        return _status(client, read_files, _form(image), "image", 1,
                       Settings(max_body_bytes=limit))

    assert status(size) == 200
    assert status(size - 1) == 413


def test_a_pixels_body_arrives_within_the_body_timeout(client):
    """A body that stops arriving is a 408 after MNIST_BODY_TIMEOUT_S, not at the request
    timeout."""
    async def never() -> dict:
        await asyncio.sleep(3600)
        return {}

    request = Request({"type": "http", "method": "POST", "path": "/", "query_string": b"",
                       "headers": [(b"content-type", b"application/json")]}, never)
    assert _status(client, read_pixels, request, Settings(body_timeout_s=0.05)) == 408


def test_a_compressed_upload_is_refused_by_its_encoding(client, test_digits):
    import gzip

    resp = client.post("/predict", content=gzip.compress(b"anything"), headers={
        "Content-Encoding": "gzip", "Content-Type": "multipart/form-data; boundary=x"})
    assert_error(resp, 415, "Content-Encoding 'gzip'")


def _full_parse(body: bytes, content_type: str) -> list:
    """What Starlette's streaming parser (the service's for everything else) reads of
    `body`: the `image` field's values (bytes of a file, str of a text), or the error."""
    from starlette.datastructures import Headers, UploadFile

    from service.http_input import _FilePartsParser, _replay

    async def parse() -> list:
        parser = _FilePartsParser(Headers({"content-type": content_type}), _replay(body))
        try:
            form = await parser.parse()
        except Exception as exc:  # noqa: BLE001 - the outcome compared, whatever it is
            return [type(exc).__name__]
        values = [await v.read() if isinstance(v, UploadFile) else v
                  for v in form.getlist("image")]
        return [values, len(form.multi_items())]

    return asyncio.run(parse())


def _one_part(data: bytes, headers: bytes = b'Content-Disposition: form-data; name="image"; '
              b'filename="d.png"\r\nContent-Type: image/png', boundary: bytes = b"b0und",
              after: bytes = b"--\r\n") -> tuple[bytes, str]:
    body = b"--" + boundary + b"\r\n" + headers + b"\r\n\r\n" + data + b"\r\n--" + boundary \
        + after
    return body, f"multipart/form-data; boundary={boundary.decode()}"


def test_the_one_pass_parse_takes_the_plain_single_file_every_client_writes(test_digits):
    import httpx

    from load_tests.payloads import multipart
    from service.http_input import _single_file

    digit = png(test_digits[0][0])
    ours, ours_type = multipart("image", [digit])
    assert _single_file(ours, ours_type, "image") == digit
    request = httpx.Request("POST", "http://x/predict", files={"image": ("d.png", digit)})
    assert _single_file(request.read(), request.headers["content-type"], "image") == digit
    assert _single_file(*_one_part(b"\r\n--b0un\r\n\r\nx"), "image") == b"\r\n--b0un\r\n\r\nx"


@pytest.mark.parametrize("body_and_type", [
    _one_part(b""),  # empty: the full parser's path names it
    _one_part(b"x", headers=b'Content-Disposition: form-data; name="images"; filename="d"'),
    _one_part(b"x", headers=b'Content-Disposition: form-data; name="image"'),  # a text field
    _one_part(b"x", headers=b'Content-Disposition: attachment; name="image"; filename="d"'),
    _one_part(b"x", headers=b'Content-Type: image/png\r\nContent-Disposition: form-data; '
                            b'name="image"; filename="d"'),
    _one_part(b"x", headers=b'Content-Disposition: form-data; name="image"; filename="d"\r\n'
                            b'Content-Disposition: form-data; name="other"; filename="e"'),
    _one_part(b"x", headers=b'Content-Disposition: form-data; name="image"; filename="d"\r\n'
                            b"X-Other: 1"),
    _one_part(b"x\r\n--b0und\r\nContent-Disposition: form-data; name=\"image\"; "
              b"filename=\"e\"\r\n\r\ny"),  # two parts
    _one_part(b"x", after=b"--"),  # no final CRLF
    _one_part(b"x", after=b"--\r\nepilogue"),
    (b"preamble\r\n" + _one_part(b"x")[0], _one_part(b"x")[1]),
    (_one_part(b"x")[0], "multipart/form-data"),  # no boundary
    (_one_part(b"x")[0], "multipart/form-data; boundary=other"),
])
def test_anything_else_is_left_to_the_full_parser(body_and_type):
    from service.http_input import _single_file

    assert _single_file(*body_and_type, "image") is None


def test_what_the_one_pass_parse_accepts_the_full_parser_reads_the_same(test_digits):
    """Random damage to a real upload: wherever the one-pass parse returns a file, the
    full parser reads that same file, and only it."""
    import random

    from service.http_input import _single_file

    rng = random.Random(0)
    body, content_type = _one_part(png(test_digits[0][1]))
    head = body.index(b"\x89PNG") + 8  # most damage lands before the PNG's data
    accepted = 0
    for _ in range(1500):
        damaged = bytearray(body)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(head) if rng.random() < 0.8 else rng.randrange(len(damaged))
            damaged[at:at + rng.randint(0, 2)] = bytes(rng.choice(b"\r\n-:;= \"abimx")
                                                       for _ in range(rng.randint(0, 2)))
        file = _single_file(bytes(damaged), content_type, "image")
        if file is not None:
            accepted += 1
            assert _full_parse(bytes(damaged), content_type) == [[file], 1], bytes(damaged)
    assert accepted > 100  # damage to the PNG, or to a filename: still one file


def test_a_predict_through_either_parser_gives_the_same_answer(client, test_digits):
    from load_tests.payloads import multipart

    digit = png(test_digits[0][2])
    plain, plain_type = multipart("image", [digit])
    # A part header the one-pass parse leaves to the full parser.
    other = plain.replace(b"Content-Type: image/png", b"Content-Type: image/png\r\nX-Other: 1")
    answers = [client.post("/predict", content=body, headers={"content-type": plain_type})
               for body in (plain, other)]
    assert [r.status_code for r in answers] == [200, 200]
    assert answers[0].content == answers[1].content
