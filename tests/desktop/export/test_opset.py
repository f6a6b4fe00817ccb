"""Opset down-conversion for ONNX-only users: newer-opset ONNX files (built here with onnx.helper and by
torch.onnx) become opset 13 for the Nano with parity checked by ONNX Runtime, or fail naming the op, its
opset and the node; lint judges by operator."""

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgekit.cli import main  # noqa: E402
from edgekit.desktop.export.run import export_model  # noqa: E402
from edgekit.desktop.export.lint import lint_model  # noqa: E402
from edgekit.desktop.export.opset import analyse, convert  # noqa: E402
from edgekit.errors import ExportError  # noqa: E402

QUIET = {"log": lambda text: None}
F = TensorProto.FLOAT


def opset_of(model):
    return [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0]


def _save(path, nodes, inits, opset, out_shape=None, name="x", shape=(1, 4, 8, 8)):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(name, F, list(shape))],
                              [helper.make_tensor_value_info("y", F, out_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="third-party")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return str(path)


def opset18_model(path):
    """Ops revised in 14-18, each used in the form that keeps its meaning at 13: Conv + BatchNormalization-15 +
    HardSwish-14 (no op at 13: rewritten) + Split-18 (num_outputs) + ReduceMean-18 (axes as an input) +
    Reshape-14 + Add-14 + Relu-14."""
    rng = np.random.default_rng(0)
    arr = lambda name, *shape: numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)  # noqa: E731
    inits = [arr("w", 8, 4, 3, 3), arr("scale", 8), arr("bias", 8), arr("mean", 8),
             numpy_helper.from_array(rng.uniform(0.5, 1.5, 8).astype(np.float32), "var"),
             numpy_helper.from_array(np.array([2, 3], np.int64), "axes"),
             numpy_helper.from_array(np.array([1, 4], np.int64), "shape")]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["b"], name="bn"),
        helper.make_node("HardSwish", ["b"], ["h"], name="hswish"),
        helper.make_node("Split", ["h"], ["s0", "s1"], axis=1, num_outputs=2, name="split"),
        helper.make_node("Add", ["s0", "s1"], ["a"], name="add"),
        helper.make_node("ReduceMean", ["a", "axes"], ["r"], keepdims=0, name="mean"),
        helper.make_node("Relu", ["r"], ["rr"], name="relu"),
        helper.make_node("Reshape", ["rr", "shape"], ["y"], allowzero=0, name="reshape"),
    ]
    return _save(path, nodes, inits, 18, [1, 4])


def layernorm_model(path):
    inits = [numpy_helper.from_array(np.ones(8, np.float32), "g"), numpy_helper.from_array(np.zeros(8, np.float32), "b")]
    nodes = [helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1, name="ln")]
    return _save(path, nodes, inits, 17, [1, 4, 8, 8])


def test_opset18_model_converts_to_13_with_parity_and_a_clean_lint(tmp_path):
    out = tmp_path / "nano.onnx"
    report = export_model(opset18_model(tmp_path / "new.onnx"), out, **QUIET)
    converted = onnx.load(str(out))
    assert opset_of(converted) == 13 and report["opset"] == 13
    ops = set(n.op_type for n in converted.graph.node)
    assert "HardSwish" not in ops and "HardSigmoid" in ops
    assert any("per-op table" in n for n in report["notes"]) and any("HardSwish" in n for n in report["notes"])
    assert report["parity_inputs"] >= 3 and report["parity_reference"] == "simplified ONNX vs source ONNX"
    assert report["parity"]["y"]["max_abs"] < 1e-4 and report["parity"]["y"]["cosine"] > 0.9999
    assert report["lint"]["ok"] and report["lint"]["problems"] == []
    for node in converted.graph.node:               # the opset-13 forms
        if node.op_type == "ReduceMean":
            assert len(node.input) == 1 and [list(a.ints) for a in node.attribute if a.name == "axes"] == [[2, 3]]
        if node.op_type in ("Split", "Reshape", "BatchNormalization"):
            assert not {"num_outputs", "allowzero", "training_mode"} & set(a.name for a in node.attribute)


def test_torch_opset17_export_converts(tmp_path):
    torch = pytest.importorskip("torch")
    import export_models as em

    src = tmp_path / "t17.onnx"
    torch.onnx.export(em.Tiny().eval(), (torch.zeros(1, 3, 20, 20),), str(src), opset_version=17,
                      input_names=["input"], dynamo=False)
    model, notes = convert(onnx.load(str(src)), 13)
    assert opset_of(model) == 13 and notes
    onnx.checker.check_model(model, full_check=True)


def test_layernorm_cannot_convert_and_nothing_is_written(tmp_path, capsys):
    src = layernorm_model(tmp_path / "ln.onnx")
    out = tmp_path / "o.onnx"
    with pytest.raises(ExportError, match=r"opset 17 and LayerNormalization \(opset 17, node ln\) cannot be "
                                          r"converted down to 13: LayerNormalization exists from opset 17 only"):
        export_model(src, out, **QUIET)
    assert not out.exists()
    assert main(["export", src, "--out", str(out), "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgekit export: error:") and "LayerNormalization" in err[0]
    assert not out.exists()
    # the same file is fine where TensorRT parses opset 17 and has LayerNormalization
    assert export_model(src, out, target="x86-trt10", **QUIET)["opset"] == 17


def test_a_revision_used_in_its_new_meaning_blocks_with_the_reason(tmp_path):
    scales = numpy_helper.from_array(np.array([1, 1, 0.5, 0.5], np.float32), "scales")
    src = _save(tmp_path / "aa.onnx", [helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear",
                                                         antialias=1, name="down")], [scales], 18, [1, 4, 4, 4])
    with pytest.raises(ExportError, match=r"Resize \(opset 18, node down\).*antialias=1"):
        export_model(src, tmp_path / "o.onnx", **QUIET)
    problems = analyse(onnx.load(src), 13)
    assert [(p["node"], p["op"], p["version"]) for p in problems] == [("down", "Resize", 18)]


def test_lint_judges_by_operator_not_by_the_opset_number(tmp_path):
    plain = onnx.load(_save(tmp_path / "relu.onnx", [helper.make_node("Relu", ["x"], ["y"], name="r")], [], 17,
                                [1, 4, 8, 8]))
    lint = lint_model(plain, "jetson-nano")
    assert lint["ok"] and [(p["node"], p["severity"]) for p in lint["problems"]] == [("(model)", "warning")]
    assert "means the same at opset 13" in lint["problems"][0]["reason"]
    assert "edgekit export" in lint["problems"][0]["fix"]
    ln = lint_model(onnx.load(layernorm_model(tmp_path / "ln.onnx")), "jetson-nano")
    assert not ln["ok"]
    assert ("ln", "LayerNormalization", "error") in [(p["node"], p["op"], p["severity"]) for p in ln["problems"]]
    assert lint_model(onnx.load(str(tmp_path / "ln.onnx")), "x86-trt10")["ok"]         # TensorRT 10 has it


def test_inspect_cli_names_the_blocking_node(tmp_path, capsys):
    assert main(["inspect", layernorm_model(tmp_path / "ln.onnx"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    errors = [(p["node"], p["op"]) for p in info["lint"]["problems"] if p["severity"] == "error"]
    assert errors == [("(model)", "opset"), ("ln", "LayerNormalization")]      # once, by the operator table


def test_rewrites_keep_the_numbers(tmp_path):
    """Gelu-20, Mish-18 and HardSwish-14 (no op at 13), Shape-15 with start/end and an uneven Split-18:
    the opset-13 rewrites give what ONNX Runtime computes on the original, on random inputs."""
    from edgekit.desktop.export import parity

    nodes = [
        helper.make_node("Gelu", ["x"], ["g"], name="gelu"),
        helper.make_node("Mish", ["g"], ["m"], name="mish"),
        helper.make_node("HardSwish", ["m"], ["h"], name="hswish"),
        helper.make_node("Split", ["h"], ["p0", "p1", "p2"], axis=3, num_outputs=3, name="split"),   # 8 -> 3, 3, 2
        helper.make_node("Concat", ["p2", "p0", "p1"], ["y"], axis=3, name="cat"),
        helper.make_node("Shape", ["x"], ["dims"], start=1, end=3, name="shape"),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, [1, 4, 8, 8])],
                              [helper.make_tensor_value_info("y", F, [1, 4, 8, 8]),
                               helper.make_tensor_value_info("dims", TensorProto.INT64, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 9
    converted, notes = convert(model, 13)
    assert opset_of(converted) == 13 and len([n for n in notes if "rewritten" in n]) == 4
    assert not {"Gelu", "Mish", "HardSwish"} & set(n.op_type for n in converted.graph.node)
    inputs = parity.make_inputs([1, 4, 8, 8], 3, seed=0)
    expected = parity.run_onnx(model.SerializeToString(), inputs, "x")
    got = parity.run_onnx(converted.SerializeToString(), inputs, "x")
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g["y"], e["y"], rtol=1e-5, atol=1e-5)
        assert list(g["dims"]) == list(e["dims"]) == [4, 8]
