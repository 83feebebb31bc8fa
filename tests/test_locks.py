"""The images install from hashed lock files that agree with the declared pins.

    make lock        # re-pins every image's dependencies (uv pip compile --generate-hashes)
"""

from __future__ import annotations

import re

import pytest

from tests.helpers import ROOT

PIN = re.compile(r"^([A-Za-z0-9_.\[\],-]+)==([^\s;\\]+)", re.M)
IMAGES = {  # Dockerfile: (the pins people edit, the lock it installs)
    "service/Dockerfile": ("service/requirements.txt", "service/requirements.lock"),
    "load_tests/Dockerfile": ("load_tests/requirements.txt", "load_tests/requirements.lock"),
    "training/Dockerfile": (None, "training/requirements.lock"),
}


def _pins(path: str) -> dict[str, str]:
    return {re.sub(r"\[.*\]", "", name).lower().replace("_", "-"): version
            for name, version in PIN.findall((ROOT / path).read_text())}


def _entries(lock: str) -> list[str]:
    """One text block per locked package."""
    return re.split(r"\n(?=[a-z0-9])", (ROOT / lock).read_text().split("\n", 2)[2])


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_every_image_installs_its_lock_with_hashes_required(dockerfile):
    text = (ROOT / dockerfile).read_text().replace("\\\n", " ")  # join continued lines
    lock = IMAGES[dockerfile][1]
    assert f"COPY {lock.rsplit('.', 1)[0]}" in text or f"COPY {lock}" in text
    assert "--require-hashes" in text
    # Nothing installed by name beside the lock, but the project itself (--no-deps)
    # and torch (pinned by version: its index is chosen at build time).
    for line in re.findall(r"pip install[^\n]*", text):
        assert "--require-hashes" in line or "--no-deps" in line or '"torch==' in line, line


@pytest.mark.parametrize("lock", sorted({lock for _, lock in IMAGES.values()} |
                                        {"service/requirements-gpu.lock"}))
def test_every_locked_package_is_pinned_and_hashed(lock):
    entries = _entries(lock)
    assert len(entries) > 10
    for entry in entries:
        assert re.match(PIN, entry) and "--hash=sha256:" in entry, entry[:200]


@pytest.mark.parametrize("pins, lock", [(p, lk) for p, lk in IMAGES.values() if p] +
                         [("service/requirements.txt", "training/requirements.lock")])
def test_the_lock_agrees_with_the_declared_pins(pins, lock):
    locked = _pins(lock)
    declared = _pins(pins)
    if lock.startswith("training"):  # the training image shares what both use
        declared = {k: v for k, v in declared.items() if k in locked}
        assert "onnxruntime-gpu" in declared  # parity is checked with what serves
    assert {k: locked.get(k) for k in declared} == declared
