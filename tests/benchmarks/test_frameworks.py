"""The framework peers of `make bench`: KServe's multipart parser on real bodies, the pins,
the labels read from them, `stop` leaving no process behind; and (slow, where `make
bench-frameworks` installed the venvs) each peer started with 2 workers, 200 real digits
answered as the service's engine answers them, both workers answering, nothing left.

    pytest tests/benchmarks/test_frameworks.py -m "not slow"   # no venv needed
    make bench-frameworks && pytest tests/benchmarks/test_frameworks.py -s
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from benchmarks.frameworks import FRAMEWORKS, Framework, alive, pins, spawned, stop
from benchmarks.frameworks.answer import DigitModel
from benchmarks.frameworks.cli import peer_args
from benchmarks.frameworks.multipart import file_part
from clients.server_process import ROOT, free_port, wait_ready
from core.png import encode_png
from load_tests.payloads import multipart
from service.engine import Engine

# The first answer of each worker process says so in the peer's log (answer.py).
FIRST_ANSWER = re.compile(r"first answer from pid (\d+)")
# What `make bench` reads in every answer (any framework's wrapper around it allowed).
DIGIT = re.compile(rb'"digit":\s*(\d)')
PNG = encode_png(np.arange(784, dtype=np.uint8).reshape(28, 28))


def test_file_part_of_the_projects_own_upload():
    body, ctype = multipart("image", [PNG])
    assert file_part(body, ctype) == PNG


def test_file_part_when_the_image_is_not_the_first_part():
    request = httpx.Request("POST", "http://x/predict", data={"note": "a\r\n--b"},
                            files=[("thumbnail", ("t.png", b"\x89PNG other", "image/png")),
                                   ("image", ("digit.png", PNG, "image/png"))])
    body = request.read()
    assert body.index(b'name="image"') > body.index(b'name="thumbnail"')
    assert file_part(body, request.headers["content-type"]) == PNG


def test_file_part_with_a_quoted_boundary_and_another_field_name():
    body, ctype = multipart("upload", [PNG])
    boundary = ctype.split("boundary=")[1]
    quoted = f'multipart/form-data; boundary="{boundary}"; charset=utf-8'
    assert file_part(body, quoted, field="upload") == PNG
    with pytest.raises(ValueError, match="no 'image' part"):
        file_part(body, quoted)


@pytest.mark.parametrize("ctype", ["application/json", "multipart/form-data"])
def test_file_part_refuses_a_body_that_is_not_multipart(ctype):
    with pytest.raises(ValueError, match="not a multipart/form-data body"):
        file_part(b"{}", ctype)


def test_file_part_refuses_a_part_without_its_blank_line():
    body, ctype = multipart("image", [PNG])
    with pytest.raises(ValueError, match="malformed"):
        file_part(body.replace(b"\r\n\r\n", b"\r\n", 1), ctype)


@pytest.mark.parametrize("fw", FRAMEWORKS, ids=lambda f: f.name)
def test_every_requirement_is_pinned_exactly(fw: Framework):
    lines = [line.strip() for line in fw.requirements.read_text().splitlines()]
    needed = [line for line in lines if line and not line.startswith("#")]
    assert needed and len(pins(fw.requirements)) == len(needed), needed


@pytest.mark.parametrize("fw", FRAMEWORKS, ids=lambda f: f.name)
def test_peers_run_the_services_runtime_versions(fw: Framework):
    service = pins(ROOT / "service" / "requirements.txt")
    peer = pins(fw.requirements)
    assert peer["onnxruntime"] == service["onnxruntime-gpu"]
    assert (peer["numpy"], peer["pillow"]) == (service["numpy"], service["pillow"])


def test_make_installs_every_framework_and_git_ignores_its_venv():
    makefile = (ROOT / "Makefile").read_text()
    listed = re.search(r"^BENCH_FRAMEWORKS = (.*)$", makefile, re.MULTILINE)
    assert listed and listed.group(1).split() == [fw.name for fw in FRAMEWORKS]
    for fw in FRAMEWORKS:
        # The pattern rule that installs it names the same venv and requirements file.
        venv, requirements = (str(p.relative_to(ROOT)).replace(fw.name, "%")
                              for p in (fw.venv, fw.requirements))
        assert f"{venv}/.installed: {requirements}\n" in makefile
        ignored = subprocess.run(["git", "check-ignore", "-q", f"{fw.venv.name}/"], cwd=ROOT)
        assert ignored.returncode == 0, fw.venv.name


def test_pins_reads_names_extras_and_versions(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("# a comment==1\nray[serve]==2.60.0\nTyping_Extensions==4.1\n\nfoo>=1\n")
    assert pins(path) == {"ray": "2.60.0", "typing-extensions": "4.1"}


@pytest.mark.parametrize("fw", FRAMEWORKS, ids=lambda f: f.name)
def test_label_shows_the_pinned_version(fw: Framework):
    version = pins(fw.requirements)[fw.package]
    short = version.removesuffix(".0")
    assert re.search(rf"\b{re.escape(short)}\b", fw.label) and "{" not in fw.label
    assert f"{short}.0" not in fw.label


def test_peer_args_read_what_a_framework_starts_its_peer_with(monkeypatch):
    litserve = next(fw for fw in FRAMEWORKS if fw.name == "litserve")
    argv = [a.format(port=8123, onnx="m.onnx", workers=3) for a in litserve.args[1:]]
    monkeypatch.setattr(sys, "argv", ["litserve_peer", *argv])
    args = peer_args("doc", "workers_per_device")
    assert (args.model_path, args.host, args.port, args.workers) == ("m.onnx", "127.0.0.1",
                                                                     8123, 3)


def test_missing_says_how_to_install():
    absent = dataclasses.replace(FRAMEWORKS[0], name="absent-framework")
    assert "make bench-frameworks" in (absent.missing() or "")
    with pytest.raises(RuntimeError, match="bench-frameworks"):
        absent.start(free_port(), Path("model.onnx"), 2, subprocess.DEVNULL)


# A process tree that shutting down the group alone would leave behind: a child in a
# session of its own (as Ray's raylet may be), a grandchild of it, and a child that
# ignores SIGTERM.
TREE = """
import signal, subprocess, sys, time
sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
stubborn = [sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"]
escaped = [sys.executable, "-c", "import subprocess, sys, time; "
           f"subprocess.Popen({sleeper!r}); time.sleep(600)"]
subprocess.Popen(stubborn)
subprocess.Popen(escaped, start_new_session=True)
print("ready", flush=True)
time.sleep(600)
"""


def test_stop_ends_every_process_the_peer_started():
    proc = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        deadline = time.monotonic() + 20
        while len(processes := spawned(proc)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)  # the escaped child's own child is on its way
        t0 = time.monotonic()
    finally:
        stop(proc, grace=1)
    assert time.monotonic() - t0 < 10
    assert len(processes) == 4  # the peer, stubborn, escaped and its child
    assert [p.pid for p in processes if alive(p)] == []
    assert proc.returncode is not None


def test_digit_model_answers_as_the_services_engine(trained, test_digits):
    onnx = trained[1] / "model.onnx"
    images = test_digits[0][:50]
    expected = Engine(onnx).probabilities(images.astype(np.float32))
    model = DigitModel(onnx)
    for image, probabilities in zip(images, expected, strict=True):
        answer = model(encode_png(image))
        assert answer["digit"] == probabilities.argmax()
        np.testing.assert_allclose(answer["probabilities"], probabilities, atol=1e-5)
        assert answer["confidence"] == pytest.approx(probabilities.max(), abs=1e-5)


def _post(url: str, body: bytes, ctype: str) -> bytes:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": ctype})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200
        return response.read()


@pytest.mark.slow
@pytest.mark.parametrize("fw", FRAMEWORKS, ids=lambda f: f.name)
def test_peer_answers_every_digit_from_both_workers(fw: Framework, request, tmp_path):
    if (reason := fw.missing()) is not None:
        pytest.skip(reason)  # before training a model for nothing
    onnx = request.getfixturevalue("trained")[1] / "model.onnx"
    images = request.getfixturevalue("test_digits")[0][:200]
    expected = Engine(onnx).probabilities(images.astype(np.float32)).argmax(1)
    bodies = [multipart("image", [encode_png(image)]) for image in images]
    port, log_path = free_port(), tmp_path / f"{fw.name}.log"
    with open(log_path, "w") as log:
        t0 = time.monotonic()
        proc = fw.start(port, onnx, 2, log)
        try:
            base = f"http://127.0.0.1:{port}"
            ready_s = wait_ready(proc, base, timeout=180, path=fw.ready_path)
            started = spawned(proc)
            with ThreadPoolExecutor(16) as pool:
                answers = list(pool.map(lambda b: _post(base + fw.predict_path, *b), bodies))
        finally:
            stop(proc)
    print(f"\n{fw.label}: ready in {ready_s:.1f} s ({time.monotonic() - t0:.1f} s "
          f"with the answers and stop), {len(started)} processes")
    digits = [int(m.group(1)) for m in map(DIGIT.search, answers) if m]
    assert digits == expected.tolist()
    assert all("probabilities" in json.dumps(json.loads(a)) for a in answers)
    workers = set(FIRST_ANSWER.findall(log_path.read_text()))
    assert len(workers) == 2, log_path.read_text()[-3000:]
    assert [p.pid for p in started if alive(p)] == []
