"""Tiny ONNX models for the profiler tests, built here with onnx.helper (a few KB)."""

import numpy as np
import pytest


def build_classifier(path, batch="N", size=32, meta=True, precision="fp32"):
    """conv3x3 (3->8) -> relu -> GAP -> flatten -> gemm (8->2); batch dim ``batch`` (str: dynamic)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edgekit.meta import ModelMeta, attach_to_onnx

    rng = np.random.RandomState(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32) * 0.1, n) for n, s in (
        ("w1", (8, 3, 3, 3)), ("b1", (8,)), ("w2", (2, 8)), ("b2", (2,)))]
    nodes = [helper.make_node("Conv", ["images", "w1", "b1"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["p"], name="gap"),
             helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "w2", "b2"], ["logits"], name="fc", transB=1)]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    if meta:
        attach_to_onnx(model, ModelMeta.from_dict({
            "task": "classification", "labels": ["a", "b"], "precision": precision,
            "input": {"name": "images", "shape": [1, 3, size, size]},
            "preprocess": {"color": "RGB", "resize": "stretch", "mean": [0.5] * 3, "std": [0.25] * 3},
            "decoder": {"type": "classification", "top_k": 1}}))
    onnx.save(model, str(path))
    return str(path)


@pytest.fixture
def tiny_model(tmp_path):
    return build_classifier(tmp_path / "tiny.onnx")


@pytest.fixture
def fixed_batch_model(tmp_path):
    return build_classifier(tmp_path / "fixed.onnx", batch=1)
