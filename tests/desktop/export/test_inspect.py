"""edgekit inspect: I/O, metadata, ops, params/FLOPs, lint verdict and estimate, on any ONNX file."""

import json

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

import export_models as em  # noqa: E402

from edgekit.cli import main  # noqa: E402
from edgekit.desktop.export.run import export_model  # noqa: E402
from edgekit.desktop.export.inspect import inspect_model  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("inspect")
    ckpt = em.tiny_checkpoint(root / "best.pt")
    out = root / "tiny.onnx"
    export_model(ckpt, out, log=lambda text: None)
    return str(out)


def test_json_object_for_other_tools(exported, capsys):
    assert main(["inspect", exported, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["inputs"] == [{"name": "images", "shape": [1, 3, 32, 32], "dtype": "float32"}]
    assert info["outputs"] == [{"name": "logits", "shape": [1, 3], "dtype": "float32"}]
    assert info["metadata"]["labels"] == ["circle", "square", "triangle"]
    assert info["opset"]["ai.onnx"] == 13 and sum(info["ops"].values()) == info["nodes"]
    assert info["ops"]["Conv"] == 4
    # params: the Conv weights (BatchNorm folded) and the Linear: recount from the initializers
    model = onnx.load(exported)
    assert info["params"] == sum(int(torch.tensor(list(i.dims)).prod()) for i in model.graph.initializer)
    assert info["flops"] > 0
    lint = info["lint"]
    assert lint["target"] == "jetson-nano" and lint["ok"] is True and lint["problems"] == []
    assert info["estimate"]["target"] == "jetson-nano" and info["estimate"]["latency_ms"] > 0


def test_layers_add_up(exported):
    info = inspect_model(exported, layers=True)
    assert len(info["layers"]) == info["nodes"]
    assert sum(layer["flops"] or 0 for layer in info["layers"]) == info["flops"]
    assert any("est_ms" in layer for layer in info["layers"] if layer["op"] == "Conv")


def test_third_party_model_with_dynamic_dims(tmp_path):
    path = tmp_path / "dyn.onnx"
    torch.onnx.export(em.Tiny().eval(), (torch.zeros(1, 3, 16, 16),), str(path), opset_version=17,
                      input_names=["input"], dynamo=False, dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}})
    info = inspect_model(str(path), target="jetson-nano")
    assert info["inputs"][0]["shape"] == ["n", 3, "h", "w"]
    assert info["metadata"] is None and info["params"] > 0
    assert info["flops"] is None and "dynamic" in info["flops_note"]
    pinned = inspect_model(str(path), target="jetson-nano", input_size="16")
    assert pinned["flops"] > 0 and pinned["cost_input_shapes"] == {"input": [1, 3, 16, 16]}
    assert pinned["estimate"]["latency_ms"] > 0
    ops = [(p["op"], p["severity"]) for p in info["lint"]["problems"]]
    # opset 17 with ops that mean the same at 13 (judged by operator): a warning, convertible by export
    assert ("opset", "warning") in ops and ("(input)", "warning") in ops and info["lint"]["ok"]
    # only a dynamic batch: FLOPs are counted at batch 1
    path2 = tmp_path / "batch.onnx"
    torch.onnx.export(em.Tiny().eval(), (torch.zeros(1, 3, 16, 16),), str(path2), opset_version=13,
                      input_names=["input"], dynamo=False, dynamic_axes={"input": {0: "n"}})
    assert inspect_model(str(path2))["flops"] > 0


def test_layers_carry_their_lint_verdict(tmp_path):
    path = tmp_path / "masked.onnx"
    torch.onnx.export(em.Masked().eval(), (torch.zeros(1, 3, 8, 8),), str(path), opset_version=13,
                      input_names=["images"], dynamo=False)
    info = inspect_model(str(path), layers=True)
    flagged = [(row["op"], row["lint"]) for row in info["layers"] if "lint" in row]
    assert flagged == [("NonZero", "error")] and not info["lint"]["ok"]


def test_target_without_tensorrt(exported):
    info = inspect_model(exported, target="x86-cpu")
    assert info["lint"]["tensorrt"] is None and info["lint"]["ok"]
    assert info["estimate"] is None and info["estimate_note"]


def test_human_output(exported, capsys):
    assert main(["inspect", exported, "--layers"]) == 0
    text = capsys.readouterr().out
    assert "images" in text and "metadata: classification, 3 labels" in text
    assert "lint for jetson-nano (TensorRT 8.2.1): ok" in text and "MFLOPs" in text


def test_bad_files_are_one_line_errors(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "missing.onnx")]) == 2
    assert "not found" in capsys.readouterr().err
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\xff\x00not a protobuf" * 10)
    assert main(["inspect", str(garbage)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a valid ONNX file" in err
