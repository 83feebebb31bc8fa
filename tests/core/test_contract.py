"""core.contract: the one description of the model's inputs and outputs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core.contract import CONTRACT, ContractError, check_session, has_normalised


def _session(inputs, outputs):
    node = lambda name, type_, shape: SimpleNamespace(name=name, type=type_, shape=shape)  # noqa: E731
    return SimpleNamespace(get_inputs=lambda: [node(*i) for i in inputs],
                           get_outputs=lambda: [node(*o) for o in outputs])


GOOD_IN = ("pixels", "tensor(float)", ["batch", 28, 28])
GOOD_OUT = ("logits", "tensor(float)", ["batch", 10])
GOOD_SEEN = ("normalised", "tensor(float)", ["batch", 28, 28])


def test_to_dict_is_what_clients_need():
    d = CONTRACT.to_dict()
    assert d["input_shape"] == ["batch", 28, 28] and d["output_shape"] == ["batch", 10]
    assert d["labels"] == [str(i) for i in range(10)] and d["pixel_max"] == 255
    assert d["normalised_shape"] == ["batch", 28, 28]
    assert d["outputs"] == ["logits", "normalised"]
    assert CONTRACT.to_dict(normalised=False)["outputs"] == ["logits"]


def test_a_matching_session_passes():
    check_session(_session([GOOD_IN], [GOOD_OUT]))
    check_session(_session([("pixels", "tensor(float)", [None, 28, 28])], [GOOD_OUT]))


def test_a_graph_with_the_normalised_digit_passes_and_says_so():
    two = _session([GOOD_IN], [GOOD_OUT, GOOD_SEEN])
    check_session(two)
    assert has_normalised(two)


def test_a_graph_with_logits_only_still_passes_without_the_normalised_digit():
    one = _session([GOOD_IN], [GOOD_OUT])  # a model exported before the second output
    check_session(one)
    assert not has_normalised(one)


@pytest.mark.parametrize("inputs, outputs, text", [
    ([GOOD_IN, GOOD_IN], [GOOD_OUT], "exactly 1 input"),
    ([("image", "tensor(float)", ["b", 28, 28])], [GOOD_OUT], "named 'image'"),
    ([("pixels", "tensor(uint8)", ["b", 28, 28])], [GOOD_OUT], "type tensor(uint8)"),
    ([("pixels", "tensor(float)", [1, 28, 28])], [GOOD_OUT], "dynamic batch"),
    ([GOOD_IN], [("logits", "tensor(float)", ["b", 9])], "shape"),
    ([GOOD_IN], [], "1 or 2 outputs"),
    ([GOOD_IN], [GOOD_OUT, GOOD_SEEN, GOOD_SEEN], "1 or 2 outputs"),
    ([GOOD_IN], [GOOD_SEEN, GOOD_OUT], "output is named 'normalised', expected 'logits'"),
    ([GOOD_IN], [GOOD_OUT, ("probs", "tensor(float)", ["b", 28, 28])],
     "second output is named 'probs', expected 'normalised'"),
    ([GOOD_IN], [GOOD_OUT, ("normalised", "tensor(uint8)", ["b", 28, 28])],
     "second output 'normalised' has type tensor(uint8)"),
    ([GOOD_IN], [GOOD_OUT, ("normalised", "tensor(float)", ["b", 784])],
     "second output 'normalised' has shape"),
    ([GOOD_IN], [GOOD_OUT, ("normalised", "tensor(float)", [1, 28, 28])], "dynamic batch"),
])
def test_a_mismatch_is_named(inputs, outputs, text):
    with pytest.raises(ContractError, match=text.replace("(", r"\(").replace(")", r"\)")):
        check_session(_session(inputs, outputs))
