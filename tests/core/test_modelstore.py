"""core.modelstore: what a complete version is, what `latest` resolves to, atomic writes.

    pytest tests/core/test_modelstore.py

A store is laid out here by hand, with a JSON stand-in for model.yaml (core reads it only
through the reader its callers pass, BentoML's in the service and the training job).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core import modelstore
from core.digests import file_digest


def read_info(folder: Path):
    info = json.loads((folder / "model.yaml").read_text())
    return info["metadata"], datetime.fromisoformat(info["created"])


def make_version(model_dir: Path, name: str, hour: int, *, onnx: bytes | None = b"graph",
                 sha: str | None = "auto", yaml_text: str | None = None) -> Path:
    folder = model_dir / name
    folder.mkdir(parents=True)
    if onnx is not None:
        (folder / "model.onnx").write_bytes(onnx)
    meta = {"onnx_file": "model.onnx"}
    if sha == "auto":
        meta["onnx_sha256"] = file_digest(folder / "model.onnx") if onnx is not None else "0"
    elif sha:
        meta["onnx_sha256"] = sha
    created = datetime(2020, 1, 1, hour, tzinfo=UTC).isoformat()
    (folder / "model.yaml").write_text(yaml_text if yaml_text is not None else
                                       json.dumps({"metadata": meta, "created": created}))
    return folder


def test_a_complete_version_and_each_way_a_partial_copy_falls_short(tmp_path):
    good = modelstore.inspect(make_version(tmp_path, "good", 1), read_info)
    assert good.problem is None and good.created is not None
    unsigned = modelstore.inspect(make_version(tmp_path, "unsigned", 1, sha=None), read_info)
    assert unsigned.problem is None  # the service serves what records no SHA-256 too
    no_yaml = modelstore.inspect(make_version(tmp_path, "yaml", 1, yaml_text="{"), read_info)
    assert no_yaml.cause == "yaml" and no_yaml.problem.startswith("JSONDecodeError: ")
    no_onnx = modelstore.inspect(make_version(tmp_path, "onnx", 1, onnx=None), read_info)
    assert no_onnx.cause == "onnx" and no_onnx.problem.endswith("model.onnx is missing")
    short = make_version(tmp_path, "short", 1)
    (short / "model.onnx").write_bytes(b"gra")  # killed mid-copy
    assert "is corrupt: SHA-256" in str(modelstore.inspect(short, read_info).problem)


def test_refusals_name_the_version_and_both_fixes(tmp_path):
    version = modelstore.inspect(make_version(tmp_path, "v1", 1, onnx=None), read_info)
    line = version.refusal("m", "/store")
    assert line.startswith("model file ") and "m:v1 is incomplete" in line
    assert "`make train`" in line and "`bentoml models delete m:v1 -y`" in line
    unreadable = modelstore.inspect(make_version(tmp_path, "v2", 1, yaml_text=""), read_info)
    assert unreadable.refusal("m", "/store").startswith(
        "model m:v2 cannot be read from the model store under /store (")


def test_versions_are_newest_first_and_unreadable_ones_last(tmp_path):
    for name, hour in (("a", 3), ("b", 5), ("c", 1)):
        make_version(tmp_path, name, hour)
    make_version(tmp_path, "broken", 9, yaml_text="")
    (tmp_path / "latest").write_text("a")  # a file, not a version
    assert [v.name for v in modelstore.versions(tmp_path, read_info)] == [
        "b", "a", "c", "broken"]
    assert modelstore.versions(tmp_path / "absent", read_info) == []


@pytest.mark.parametrize("text", [None, "", " \n", "gone", "../a", ".hidden"])
def test_latest_that_names_no_version_reads_as_none(tmp_path, text):
    make_version(tmp_path, "a", 1)
    if text is not None:
        (tmp_path / "latest").write_text(text)
    assert modelstore.read_latest(tmp_path) is None


def test_latest_naming_a_complete_version_is_that_version(tmp_path):
    make_version(tmp_path, "old", 1)
    make_version(tmp_path, "new", 2)
    (tmp_path / "latest").write_text("old\n")  # a rollback: not the newest
    version, warning = modelstore.resolve_latest(tmp_path, read_info, "/store")
    assert version is not None and version.name == "old" and warning is None


def test_latest_naming_an_incomplete_version_is_refused_not_replaced(tmp_path):
    make_version(tmp_path, "good", 1)
    make_version(tmp_path, "partial", 2, onnx=None)
    (tmp_path / "latest").write_text("partial")
    with pytest.raises(modelstore.StoreError, match=r"m?\w+:partial, which latest names, is "
                       r"incomplete.*bentoml models delete \w+:partial -y"):
        modelstore.resolve_latest(tmp_path, read_info, "/store")


def test_an_empty_latest_serves_the_newest_complete_version_with_a_warning(tmp_path):
    make_version(tmp_path, "old", 1)
    make_version(tmp_path, "good", 2)
    make_version(tmp_path, "partial", 3, onnx=None)
    (tmp_path / "latest").write_text("")
    version, warning = modelstore.resolve_latest(tmp_path, read_info, "/store")
    assert version is not None and version.name == "good"
    assert warning is not None and f"{tmp_path.name}:partial (model file" in warning
    assert "serving the newest complete version" in warning and "make train" in warning


def test_only_incomplete_versions_are_refused_and_none_at_all_is_none(tmp_path):
    assert modelstore.resolve_latest(tmp_path, read_info, "/store") == (None, None)
    make_version(tmp_path, "partial", 3, onnx=None)
    with pytest.raises(modelstore.StoreError, match="holds only incomplete versions"):
        modelstore.resolve_latest(tmp_path, read_info, "/store")


def test_atomic_write_replaces_whole_and_a_killed_write_changes_nothing(tmp_path, monkeypatch):
    latest = tmp_path / "latest"
    modelstore.atomic_write_text(latest, "v1")
    assert latest.read_text() == "v1" and modelstore.stale_temps(latest) == []

    def killed(src, dst):  # the writer dies between writing its text and the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        modelstore.atomic_write_text(latest, "v2")
    assert latest.read_text() == "v1"
    assert modelstore.stale_temps(latest) == [modelstore.temp_name(latest)]


def test_a_full_disk_leaves_the_old_text_and_no_staged_one(tmp_path, monkeypatch):
    latest = tmp_path / "latest"
    modelstore.atomic_write_text(latest, "v1")

    def full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError, match="No space"):
        modelstore.atomic_write_text(latest, "v2")
    assert latest.read_text() == "v1" and modelstore.stale_temps(latest) == []
