"""Third-party ONNX files, built here with onnx.helper as other exporters write them: weights in Constant
nodes (paddle2onnx), symbolic dims named `p2o.DynamicDimension.N` / `height` / `width`, Ultralytics'
`imgsz` in metadata_props. inspect, profile and build must give concrete numbers."""

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgekit.cli import main  # noqa: E402
from edgekit.desktop.export.inspect import inspect_model  # noqa: E402

COUT, K = 8, 3


def _conv_flops(h, w):
    """2 x multiply-adds of the 3x3 conv (pad 1, stride 1), 3 -> 8 channels, at h x w."""
    return 2 * COUT * h * w * 3 * K * K


def paddle_like(path):
    """Conv weights as a Constant `value` tensor, the bias as Constant `value_floats`, no initializers;
    input x: [p2o.DynamicDimension.0, 3, p2o.DynamicDimension.1, p2o.DynamicDimension.2]."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((COUT, 3, K, K)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Constant", [], ["conv.w"], value=weight),
        helper.make_node("Constant", [], ["conv.b"], value_floats=[0.1] * COUT),
        helper.make_node("Conv", ["x", "conv.w", "conv.b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["p2o.DynamicDimension.0", 3, "p2o.DynamicDimension.1",
                                                               "p2o.DynamicDimension.2"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["p2o.DynamicDimension.0", COUT, "p2o.DynamicDimension.1",
                                                               "p2o.DynamicDimension.2"])
    model = helper.make_model(helper.make_graph(nodes, "paddle", [x], [y]), producer_name="PaddlePaddle",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


def ultralytics_like(path):
    """A fixed batch, dynamic `height`/`width`, weights as initializers, `imgsz: [640, 640]` in metadata."""
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.standard_normal((COUT, 3, K, K)).astype(np.float32), "w")]
    nodes = [helper.make_node("Conv", ["images", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Sigmoid", ["c"], ["output0"])]
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, "height", "width"])
    y = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, COUT, "height", "width"])
    model = helper.make_model(helper.make_graph(nodes, "yolo", [x], [y], inits), producer_name="pytorch",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(model, {"imgsz": "[640, 640]", "stride": "32", "task": "detect",
                                   "names": "{0: 'person'}"})
    onnx.save(model, str(path))
    return str(path)


def with_subgraph(path):
    """Weights inside both branches of an If (initializer in one, Constant in the other), a sparse Constant."""
    then_w = numpy_helper.from_array(np.ones((4,), np.float32), "then_w")
    then_g = helper.make_graph([helper.make_node("Add", ["x", "then_w"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, [4])], [then_w])
    else_g = helper.make_graph([helper.make_node("Constant", [], ["e_c"], value=numpy_helper.from_array(
        np.zeros((4,), np.float32))), helper.make_node("Add", ["x", "e_c"], ["e"])], "else", [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, [4])])
    sparse = helper.make_sparse_tensor(numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "vals"),
                                       numpy_helper.from_array(np.array([0, 5], np.int64), "idx"), [10])
    nodes = [helper.make_node("Constant", [], ["cond"], value=numpy_helper.from_array(np.array(True))),
             helper.make_node("Constant", [], ["s"], sparse_value=sparse),
             helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g)]
    graph = helper.make_graph(nodes, "sub", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


def test_constant_node_weights_are_parameters(tmp_path):
    info = inspect_model(paddle_like(tmp_path / "p.onnx"), input_size="32")
    assert info["params"] == COUT * 3 * K * K + COUT
    assert info["params_by_carrier"] == {"constants": COUT * 3 * K * K + COUT}
    conv = [r for r in inspect_model(str(tmp_path / "p.onnx"), input_size="32", layers=True)["layers"]
            if r["op"] == "Conv"][0]
    assert conv["params"] == COUT * 3 * K * K + COUT                 # the Conv's weights, found via Constants


def test_weights_in_subgraphs_and_sparse_constants(tmp_path):
    info = inspect_model(with_subgraph(tmp_path / "s.onnx"))
    # cond (1) + sparse (10 dense elements) at top level; 4 + 4 inside the branches
    assert info["params_by_carrier"] == {"constants": 11, "subgraphs": 8}
    assert info["params"] == 19


def test_symbolic_dims_without_a_size_advise_concrete_numbers(tmp_path, capsys):
    path = paddle_like(tmp_path / "p.onnx")
    info = inspect_model(path)
    assert info["flops"] is None and "--input-size 640x640" in info["flops_note"]
    fixes = " ".join(p["fix"] for p in info["lint"]["problems"])
    assert "x:1x3x640x640/4x3x640x640/8x3x640x640" in fixes and "example" in fixes
    assert main(["inspect", path]) == 0
    out = capsys.readouterr().out
    assert "x:1x3x640x640/4x3x640x640/8x3x640x640" in out
    assert "P2O.DYNAMICDIMENSION" not in out                      # never the symbols upper-cased into a shape


def test_input_size_flag_counts_flops_at_that_size(tmp_path, capsys):
    path = paddle_like(tmp_path / "p.onnx")
    assert main(["inspect", path, "--input-size", "320x256", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["cost_input_shapes"] == {"x": [1, 3, 320, 256]}
    conv = info["by_op"]["Conv"]["flops"]
    assert conv == _conv_flops(320, 256)
    assert "--input-size" in info["input_size_note"]
    assert "x:1x3x320x256/4x3x320x256/8x3x320x256" in " ".join(p["fix"] for p in info["lint"]["problems"])


def test_ultralytics_imgsz_resolves_the_size(tmp_path):
    info = inspect_model(ultralytics_like(tmp_path / "y.onnx"))
    assert info["cost_input_shapes"] == {"images": [1, 3, 640, 640]}
    assert "imgsz" in info["input_size_note"]
    assert info["by_op"]["Conv"]["flops"] == _conv_flops(640, 640)
    assert info["estimate"]["latency_ms"] > 0
    fix = [p["fix"] for p in info["lint"]["problems"] if p["node"] == "images"][0]
    # the batch is fixed: the profile varies nothing but says the size and where it came from
    assert "images:1x3x640x640/1x3x640x640/1x3x640x640" in fix and "imgsz" in fix
    # --input-size wins over the metadata
    assert inspect_model(str(tmp_path / "y.onnx"), input_size="64")["cost_input_shapes"] == {"images": [1, 3, 64, 64]}


def test_build_shapes_advice_is_concrete(tmp_path, capsys):
    assert main(["build", paddle_like(tmp_path / "p.onnx"), "--print-trtexec", "--target", "jetson-nano"]) == 2
    err = capsys.readouterr().err
    assert "x:1x3x640x640/4x3x640x640/8x3x640x640" in err and "P2O.DYNAMICDIMENSION" not in err
    assert main(["build", ultralytics_like(tmp_path / "y.onnx"), "--print-trtexec", "--target", "jetson-nano"]) == 2
    err = capsys.readouterr().err
    assert "images:1x3x640x640" in err and "imgsz" in err


def test_profile_uses_imgsz_and_input_size(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    common = ["--duration", "0.05", "--min-iters", "3", "--warmup-ms", "0", "--no-telemetry", "--json", "-"]
    assert main(["profile", ultralytics_like(tmp_path / "y.onnx")] + common) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["context"]["input_shapes"] == {"images": [1, 3, 640, 640]}
    assert "imgsz" in captured.err
    paddle = paddle_like(tmp_path / "p.onnx")
    assert main(["profile", paddle] + common) == 2
    err = capsys.readouterr().err
    assert "--input-shape x:1x3x640x640" in err and "--input-size" in err
    assert main(["profile", paddle, "--input-size", "48"] + common) == 0
    assert json.loads(capsys.readouterr().out)["context"]["input_shapes"] == {"x": [1, 3, 48, 48]}
