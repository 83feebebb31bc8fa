"""service/store.py: the reference profile stored with a model, or None with one log line."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from core import profile as profiles
from service.store import reference_profile


def _model(folder: Path, metadata: dict) -> SimpleNamespace:
    return SimpleNamespace(info=SimpleNamespace(metadata=metadata), tag="mnist_mlp:v1",
                           path_of=lambda name: str(folder / name))


def _profile() -> profiles.Profile:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (50, 28, 28)).astype(np.float32)
    probs = rng.dirichlet(np.ones(10), 50)
    return profiles.build("unit", x, probs)


def test_the_profile_the_metadata_names_is_read(tmp_path):
    profiles.save(_profile(), tmp_path / profiles.REFERENCE_FILE)
    model = _model(tmp_path, {profiles.META_REFERENCE: profiles.REFERENCE_FILE})
    assert reference_profile(model) == profiles.load(tmp_path / profiles.REFERENCE_FILE)


def test_a_model_registered_without_one_has_none(tmp_path, caplog):
    assert reference_profile(_model(tmp_path, {})) is None
    assert not caplog.records


@pytest.mark.parametrize("content", ["{not json", '{"format": 99}', '{"format": 1}', "", None])
def test_one_that_cannot_be_read_is_logged_and_served_without(tmp_path, caplog, content):
    if content is not None:  # None: the file the metadata names is missing
        (tmp_path / profiles.REFERENCE_FILE).write_text(content)
    model = _model(tmp_path, {profiles.META_REFERENCE: profiles.REFERENCE_FILE})
    with caplog.at_level(logging.WARNING, "mnist_service"):
        assert reference_profile(model) is None
    assert len(caplog.records) == 1 and "serving without a reference" in caplog.text


def test_one_that_fails_the_check_is_served_without(tmp_path, caplog):
    profiles.save(_profile(), tmp_path / profiles.REFERENCE_FILE)
    model = _model(tmp_path, {profiles.META_REFERENCE: profiles.REFERENCE_FILE})

    def refuse(_: profiles.Profile) -> None:
        raise ValueError("other edges")

    assert reference_profile(model, refuse) is None
    assert "other edges" in caplog.text
