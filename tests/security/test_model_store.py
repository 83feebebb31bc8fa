"""Finding 7 of the hardening issue: a damaged model store stops the service with one line.

    pytest tests/security/test_model_store.py

An invalid model.yaml in the store printed a 116-line traceback from BentoML's model
resolution (which runs before any hook of ours). It must end like the other refusals:
exit 1 and one line that says what is wrong.
"""

from __future__ import annotations

import shutil

import pytest

from tests.helpers import serve_expecting_refusal

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("damage", ["{{{ not: [yaml", "name: mnist_mlp\n"])
def test_an_unreadable_model_yaml_is_one_line_and_exit_1(trained, tmp_path, damage):
    home = tmp_path / "bentoml"
    shutil.copytree(trained[2], home, ignore=shutil.ignore_patterns("bentos"))
    for yaml_file in (home / "models" / "mnist_mlp").glob("*/model.yaml"):
        yaml_file.write_text(damage)
    code, out = serve_expecting_refusal({"BENTOML_HOME": str(home)})
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == 1, out
    assert len(lines) == 1, out
    assert lines[-1].startswith("mnist service cannot start: model mnist_mlp:"), out
    assert "cannot be read from the model store" in lines[-1]
    assert "Traceback" not in out


def test_a_bad_setting_is_one_line_and_exit_1(trained):
    code, out = serve_expecting_refusal({"BENTOML_HOME": str(trained[2]),
                                         "MNIST_MAX_PIXELS": "lots"})
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == 1, out
    assert lines == ["mnist service cannot start: MNIST_MAX_PIXELS must be an integer, "
                     "got 'lots'"], out
