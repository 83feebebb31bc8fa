"""The ONNX export (training/export.py): one file, the contract, parity with PyTorch."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import torch

from core.contract import CONTRACT, check_session, has_normalised
from training.export import check_parity, export_onnx, onnx_logits, onnx_run, onnx_session
from training.model import MLP, MLPConfig


def test_the_default_graph_is_faithful_and_pools_with_maxpool(tmp_path, test_digits):
    torch.manual_seed(0)
    model = MLP(MLPConfig(hidden_sizes=(64,))).eval()
    model.temperature.fill_(0.5)  # sharpens, as fitted temperatures do: differences too
    path = export_onnx(model, tmp_path / "model.onnx", {"note": "test"})
    proto = onnx.load(str(path))
    ops = [n.op_type for n in proto.graph.node]
    # The thickening's dilations are one MaxPool each (two passes), not ~20 small nodes.
    assert ops.count("MaxPool") == 2 and "GridSample" in ops
    assert [i.name for i in proto.graph.input] == [CONTRACT.input_name]
    assert {p.key: p.value for p in proto.metadata_props}["note"] == "test"
    parity = check_parity(model, path, test_digits[0][:500])
    assert parity["argmax_agreement"] == 1.0 and parity["max_abs_logit_diff"] < 1e-4
    # Reported, not gated by the pipeline; under half a grey level, a PNG of it is exact.
    assert parity["max_abs_normalised_diff"] < 0.5


def test_the_graph_also_returns_the_normalised_digit_it_reads(tmp_path, test_digits):
    torch.manual_seed(0)
    model = MLP(MLPConfig(hidden_sizes=(16,))).eval()
    session = onnx_session(export_onnx(model, tmp_path / "model.onnx", {}))
    check_session(session)  # [logits, normalised], names, types, dynamic batch
    assert has_normalised(session)
    assert [o.name for o in session.get_outputs()] == ["logits", "normalised"]
    x = test_digits[0][:7]
    logits, digits = onnx_run(session, ["logits", "normalised"], x)
    with torch.no_grad():
        expected = model.normalise(torch.from_numpy(x.astype(np.float32))).numpy()
    assert digits.shape == (7, 28, 28) and np.abs(digits - expected).max() < 0.5
    assert not np.array_equal(digits.round(), x)  # thickened and deskewed, not the input
    np.testing.assert_array_equal(onnx_logits(session, x), logits)


def test_the_export_warns_of_nothing(tmp_path):
    """The exporter's own LeafSpec FutureWarning is ignored (training/export.py), and
    nothing else is: any warning fails here."""
    model = MLP(MLPConfig(hidden_sizes=(8,))).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        export_onnx(model, tmp_path / "model.onnx", {})
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated", FutureWarning,
                      stacklevel=1)
    assert len(seen) == 1  # the filter is the export's, not the process's
