"""Offline TensorRT lint: the per-release tables and each rule, on small hand-built ONNX graphs."""

import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from edgekit.desktop.export.lint import lint_model, load_table, table_sources  # noqa: E402
from edgekit.targets import get_target  # noqa: E402

F = TensorProto.FLOAT


def _model(nodes, inputs, outputs, inits=(), opset=13, extra_opsets=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)] + [
        helper.make_opsetid(d, 1) for d in extra_opsets])


def _x(shape=(1, 3, 8, 8), name="x"):
    return helper.make_tensor_value_info(name, F, list(shape))


def _y(name="y", dtype=F):
    return helper.make_tensor_value_info(name, dtype, None)


def _ops(lint):
    return [(p["node"], p["op"], p["severity"]) for p in lint["problems"]]


def test_tables_name_their_source_and_match_the_targets():
    sources = table_sources()
    assert set(sources) == {"8.2", "8.5", "10"}
    for source in sources.values():
        assert source["repo"] == "onnx/onnx-tensorrt" and source["file"] == "docs/operators.md"
        assert len(source["commit"]) == 40
    assert load_table("8.2")["max_opset"] == get_target("jetson-nano").max_opset == 13
    assert load_table("8.5")["max_opset"] == get_target("jetson-xavier-nx").max_opset == 17
    assert load_table("10")["max_opset"] == 20 and load_table("10")["min_opset"] == 9
    assert load_table("8.2")["ops"]["Conv"]["supported"] and not load_table("8.2")["ops"]["NonZero"]["supported"]
    assert load_table("8.2")["int64_cast_to_int32"] and not load_table("10")["int64_cast_to_int32"]
    # docs cross-checked with the parser's importers: 8.2's docs say N for Reciprocal, the parser has it
    reciprocal = load_table("8.2")["ops"]["Reciprocal"]
    assert reciprocal["supported"] and reciprocal["importer"] and reciprocal["docs_supported"] is False
    for series in ("8.2", "8.5", "10"):
        ops = load_table(series)["ops"]
        assert all(entry["supported"] == entry["importer"] for entry in ops.values())


def test_clean_model_passes():
    w = helper.make_tensor("w", F, [4, 3, 3, 3], [0.1] * 108)
    m = _model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])], [_x()], [_y()], [w])
    lint = lint_model(m, "jetson-nano")
    assert lint["ok"] and lint["problems"] == [] and lint["target"] == "jetson-nano"
    assert lint["table"]["ref"] == "8.2-GA"


def test_unsupported_op_differs_per_release():
    m = _model([helper.make_node("NonZero", ["x"], ["y"], name="nz")], [_x()], [_y(dtype=TensorProto.INT64)])
    nano = lint_model(m, "jetson-nano")
    assert not nano["ok"] and ("nz", "NonZero", "error") in _ops(nano)
    problem = [p for p in nano["problems"] if p["op"] == "NonZero"][0]
    assert "8.2" in problem["reason"] and problem["fix"]
    assert set(problem) == {"node", "op", "reason", "fix", "severity"}
    xavier = lint_model(m, "jetson-xavier-nx")          # NonZero is supported from 8.5 on
    assert xavier["ok"] and ("nz", "NonZero", "error") not in _ops(xavier)


def test_opset_above_the_parser_and_custom_domain():
    m = _model([helper.make_node("MyNms", ["x"], ["y"], domain="com.acme", name="nms")], [_x()], [_y()],
               opset=17, extra_opsets=["com.acme"])
    lint = lint_model(m, "jetson-nano")
    # judged by operator: no standard op here changed meaning since 13, so the opset alone is a warning
    assert ("(model)", "opset", "warning") in _ops(lint)
    assert ("nms", "com.acme:MyNms", "error") in _ops(lint)
    assert "plugin" in [p for p in lint["problems"] if p["node"] == "nms"][0]["reason"]
    assert ("(model)", "opset", "warning") not in _ops(lint_model(m, "jetson-xavier-nx"))


def test_restrictions_from_the_table():
    w = helper.make_tensor("w", F, [4, 3, 3, 3], [0.1] * 108)
    scales = helper.make_tensor("scales", F, [4], [1, 1, 2, 2])
    nodes = [
        helper.make_node("Resize", ["x", "", "scales"], ["r"], mode="cubic", name="resize"),
        helper.make_node("Relu", ["w"], ["w_dyn"], name="relu_w"),
        helper.make_node("Conv", ["x", "w_dyn"], ["c"], name="conv_dynamic_w"),
        helper.make_node("MaxPool", ["x"], ["p", "idx"], kernel_shape=[2, 2], name="pool_idx"),
    ]
    m = _model(nodes, [_x()], [_y("r"), _y("c"), _y("p"), _y("idx", TensorProto.INT64)], [w, scales])
    lint = lint_model(m, "jetson-nano")
    by_node = dict((p["node"], p) for p in lint["problems"])
    assert "mode='cubic'" in by_node["resize"]["reason"]
    assert "initializer" in by_node["conv_dynamic_w"]["reason"]
    assert "Indices" in by_node["pool_idx"]["reason"]
    assert not lint["ok"]


def test_int64_constants_and_outputs():
    big = helper.make_tensor("big", TensorProto.INT64, [1], [2 ** 40])
    ends = helper.make_tensor("ends", TensorProto.INT64, [1], [2 ** 63 - 1])
    starts = helper.make_tensor("starts", TensorProto.INT64, [1], [1])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nodes = [
        helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["s"], name="slice"),
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Add", ["shape", "big"], ["y"], name="add_big"),
    ]
    m = _model(nodes, [_x()], [_y("s"), _y("y", TensorProto.INT64)], [big, ends, starts, axes])
    lint = lint_model(m, "jetson-nano")
    problems = dict((p["node"], p) for p in lint["problems"])
    assert problems["big"]["severity"] == "error" and "clamps" in problems["big"]["reason"]
    assert "ends" not in problems                      # INT64_MAX as a Slice end clamps harmlessly
    assert problems["y"]["severity"] == "warning" and "INT32" in problems["y"]["reason"]
    assert any("INT64 constant" in n for n in lint["notes"])
    assert "big" not in dict((p["node"], p) for p in lint_model(m, "jetson-orin-nano")["problems"])


def test_dynamic_input_needs_a_profile_and_x86_has_no_tensorrt():
    m = _model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [_x(("n", 3, "h", 8))], [_y()])
    lint = lint_model(m, "jetson-nano")
    assert lint["ok"] and [(p["node"], p["severity"]) for p in lint["problems"]] == [("x", "warning")]
    assert "optimisation profile" in lint["problems"][0]["reason"]
    cpu = lint_model(m, "x86-cpu")
    assert cpu["ok"] and cpu["problems"] == [] and cpu["tensorrt"] is None


def test_subgraph_nodes_are_checked():
    then = helper.make_graph([helper.make_node("NonZero", ["x"], ["t"], name="inner_nz")], "then", [],
                             [_y("t", TensorProto.INT64)])
    other = helper.make_graph([helper.make_node("Shape", ["x"], ["e"], name="inner_shape")], "else", [],
                              [_y("e", TensorProto.INT64)])
    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    m = _model([helper.make_node("If", ["cond"], ["y"], then_branch=then, else_branch=other, name="if")],
               [_x(), cond], [_y("y", TensorProto.INT64)])
    assert ("inner_nz", "NonZero", "error") in _ops(lint_model(m, "jetson-nano"))


def test_quantized_weights_through_qdq_count_as_constant():
    w = helper.make_tensor("w", F, [4, 3, 3, 3], [0.1] * 108)
    scale = helper.make_tensor("s", F, [], [0.01])
    zero = helper.make_tensor("z", TensorProto.INT8, [], [0])
    nodes = [helper.make_node("QuantizeLinear", ["w", "s", "z"], ["wq"], name="q"),
             helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["wdq"], name="dq"),
             helper.make_node("Conv", ["x", "wdq"], ["y"], name="conv")]
    m = _model(nodes, [_x()], [_y()], [w, scale, zero])
    assert lint_model(m, "jetson-nano")["problems"] == []
    nonzero = helper.make_tensor("z", TensorProto.INT8, [], [3])
    bad = _model(nodes, [_x()], [_y()], [w, scale, nonzero])
    assert [p["node"] for p in lint_model(bad, "jetson-nano")["problems"]] == ["q", "dq"]


def test_uint8_input_is_refused_by_8_2_only():
    cast = helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT, name="cast")
    m = _model([cast], [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 3, 8, 8])], [_y()])
    nano = lint_model(m, "jetson-nano")
    assert ("x", "(input)", "error") in _ops(nano) and "UINT8" in nano["problems"][0]["reason"]
    assert lint_model(m, "jetson-xavier-nx")["problems"] == []
    m64 = _model([cast], [helper.make_tensor_value_info("x", TensorProto.INT64, [1, 3, 8, 8])], [_y()])
    assert ("x", "(input)", "warning") in _ops(lint_model(m64, "jetson-nano"))


def test_resize_scales_must_be_constant_on_8_2_unless_sizes_are_given():
    roi = helper.make_tensor("roi", F, [0], [])
    nodes = [helper.make_node("Shape", ["x"], ["shape"], name="shape"),
             helper.make_node("Cast", ["shape"], ["shape_f"], to=F, name="cast"),
             helper.make_node("Div", ["shape_f", "shape_f"], ["scales"], name="div"),
             helper.make_node("Resize", ["x", "roi", "scales"], ["y"], mode="nearest", name="resize")]
    m = _model(nodes, [_x()], [_y()], [roi])
    nano = lint_model(m, "jetson-nano")
    assert [(p["node"], p["op"]) for p in nano["problems"]] == [("resize", "Resize")]
    assert "scales" in nano["problems"][0]["reason"]
    assert lint_model(m, "jetson-xavier-nx")["problems"] == []
    sizes = helper.make_tensor("sizes", TensorProto.INT64, [4], [1, 3, 16, 16])
    with_sizes = _model([helper.make_node("Resize", ["x", "roi", "", "sizes"], ["y"], mode="nearest", name="r")],
                        [_x()], [_y()], [roi, sizes])
    assert lint_model(with_sizes, "jetson-nano")["problems"] == []
