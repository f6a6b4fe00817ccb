"""edgekit.desktop.export.graph (C3): per-layer FLOPs, params and bytes from ONNX shape inference,
checked against hand-computed values on graphs built here with onnx.helper."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.desktop.export.graph import layer_costs, summarize
from edgekit.errors import ModelError


def _model(nodes, inputs, outputs, inits, opset=13):
    graph = helper.make_graph(nodes, "g", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def small_net(batch="N"):
    """conv3x3 (3->8, 32x32) -> relu -> depthwise conv3x3 s2 (8, 16x16) -> GAP -> flatten -> gemm (8->10)."""
    inits = {"w1": np.zeros((8, 3, 3, 3), np.float32), "b1": np.zeros(8, np.float32),
             "w2": np.zeros((8, 1, 3, 3), np.float32), "w3": np.zeros((10, 8), np.float32),
             "b3": np.zeros(10, np.float32)}
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="dw", group=8, pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["c2"], ["p"], name="gap"),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], name="fc", transB=1),
    ]
    return _model(nodes, [_vi("x", [batch, 3, 32, 32])], [_vi("y", [batch, 10])], inits)


def test_flops_params_bytes_by_hand():
    costs = {c["name"]: c for c in layer_costs(small_net())}
    conv1 = costs["conv1"]
    # 2 x (8*32*32 outputs) x (3*3*3 MACs each)
    assert conv1["flops"] == 2 * 8 * 32 * 32 * 27
    assert conv1["params"] == 8 * 27 + 8 and conv1["weight_bytes"] == 4 * (8 * 27 + 8)
    assert conv1["input_bytes"] == 4 * 3 * 32 * 32 and conv1["output_bytes"] == 4 * 8 * 32 * 32
    assert conv1["input_elements"] == 3 * 32 * 32 and conv1["output_elements"] == 8 * 32 * 32
    assert conv1["kernel"] == [3, 3] and conv1["stride"] == [1, 1] and conv1["group"] == 1
    dw = costs["dw"]
    # depthwise: each of 8*16*16 outputs sees 1 channel x 3x3
    assert dw["flops"] == 2 * 8 * 16 * 16 * 9 and dw["group"] == 8 and dw["stride"] == [2, 2]
    assert costs["relu1"]["flops"] == 8 * 32 * 32
    assert costs["gap"]["flops"] == 8 * 16 * 16
    assert costs["flat"]["flops"] == 0
    assert costs["fc"]["flops"] == 2 * 10 * 8 and costs["fc"]["params"] == 90
    assert costs["fc"]["output_shape"] == [1, 10]       # symbolic batch -> 1


def test_summarize_totals():
    costs = layer_costs(small_net())
    s = summarize(costs)
    assert s["params"] == 8 * 27 + 8 + 72 + 90
    assert s["flops"] == sum(c["flops"] for c in costs)
    assert s["by_op"]["Conv"]["count"] == 2 and s["layers"] == 6 and s["unknown_shapes"] == 0


def test_input_shapes_override_and_dynamic_dims():
    costs = {c["name"]: c for c in layer_costs(small_net(), {"x": [4, 3, 64, 64]})}
    assert costs["conv1"]["flops"] == 4 * 2 * 8 * 64 * 64 * 27
    net = small_net()
    net.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "H"
    with pytest.raises(ModelError, match="dynamic dimension 2"):
        layer_costs(net)
    with pytest.raises(ModelError, match="3 dimensions|4 dimensions"):
        layer_costs(small_net(), {"x": [1, 3, 32]})


def test_matmul_and_conv_transpose():
    inits = {"w": np.zeros((16, 32), np.float32), "wt": np.zeros((4, 2, 2, 2), np.float32)}
    nodes = [helper.make_node("MatMul", ["a", "w"], ["m"], name="mm"),
             helper.make_node("ConvTranspose", ["img", "wt"], ["up"], name="up", strides=[2, 2])]
    model = _model(nodes, [_vi("a", [2, 5, 16]), _vi("img", [1, 4, 8, 8])], [_vi("m", None), _vi("up", None)], inits)
    costs = {c["name"]: c for c in layer_costs(model)}
    assert costs["mm"]["flops"] == 2 * 2 * 5 * 32 * 16
    # each input element scatters into Cout/group * k*k outputs
    assert costs["up"]["flops"] == 2 * 4 * 8 * 8 * 2 * 4
    assert costs["up"]["output_shape"] == [1, 2, 16, 16]


def test_reads_a_file_and_refuses_garbage(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(small_net(), str(path))
    assert len(layer_costs(str(path))) == 6
    with pytest.raises(ModelError, match="not found"):
        layer_costs(str(tmp_path / "missing.onnx"))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\xff\xff not onnx")
    with pytest.raises(ModelError):
        layer_costs(str(bad))
