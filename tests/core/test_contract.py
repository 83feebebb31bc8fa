"""core.contract: the one description of the model's inputs and outputs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core.contract import CONTRACT, ContractError, check_session


def _session(inputs, outputs):
    node = lambda name, type_, shape: SimpleNamespace(name=name, type=type_, shape=shape)  # noqa: E731
    return SimpleNamespace(get_inputs=lambda: [node(*i) for i in inputs],
                           get_outputs=lambda: [node(*o) for o in outputs])


GOOD_IN = ("pixels", "tensor(float)", ["batch", 28, 28])
GOOD_OUT = ("logits", "tensor(float)", ["batch", 10])


def test_to_dict_is_what_clients_need():
    d = CONTRACT.to_dict()
    assert d["input_shape"] == ["batch", 28, 28] and d["output_shape"] == ["batch", 10]
    assert d["labels"] == [str(i) for i in range(10)] and d["pixel_max"] == 255


def test_a_matching_session_passes():
    check_session(_session([GOOD_IN], [GOOD_OUT]))
    check_session(_session([("pixels", "tensor(float)", [None, 28, 28])], [GOOD_OUT]))


@pytest.mark.parametrize("inputs, outputs, text", [
    ([GOOD_IN, GOOD_IN], [GOOD_OUT], "exactly 1 input"),
    ([("image", "tensor(float)", ["b", 28, 28])], [GOOD_OUT], "named 'image'"),
    ([("pixels", "tensor(uint8)", ["b", 28, 28])], [GOOD_OUT], "type tensor(uint8)"),
    ([("pixels", "tensor(float)", [1, 28, 28])], [GOOD_OUT], "dynamic batch"),
    ([GOOD_IN], [("logits", "tensor(float)", ["b", 9])], "shape"),
])
def test_a_mismatch_is_named(inputs, outputs, text):
    with pytest.raises(ContractError, match=text.replace("(", r"\(").replace(")", r"\)")):
        check_session(_session(inputs, outputs))
