"""edgekit export: SOURCE kinds, opset, simplification, checks, parity, lint, metadata, errors."""

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import export_models as em  # noqa: E402

from edgekit.cli import main  # noqa: E402
from edgekit.desktop.export.run import export_model, parse_batch, parse_input_size  # noqa: E402
from edgekit.errors import ConfigError, ExportError, LintError, ModelError, ParityError  # noqa: E402
from edgekit.fsutil import sha256_file  # noqa: E402
from edgekit.meta import read_meta  # noqa: E402

QUIET = dict(log=lambda text: None)


def opset_of(path):
    return [o.version for o in onnx.load(str(path)).opset_import if o.domain in ("", "ai.onnx")][0]


def _leftovers(directory):
    return [n for n in os.listdir(str(directory)) if n.endswith((".onnx", ".tmp"))]


def test_checkpoint_exports_with_its_metadata_and_target_opset(tmp_path):
    ckpt = em.tiny_checkpoint(tmp_path / "best.pt")
    out = tmp_path / "model.onnx"
    report = export_model(ckpt, out, target="jetson-nano", **QUIET)
    assert report["opset"] == 13 and opset_of(out) == 13
    assert report["nodes_after"] <= report["nodes_before"]
    assert report["lint"]["ok"] and report["lint"]["problems"] == []
    assert set(report["parity"]) == {"logits"} and report["parity"]["logits"]["max_abs"] < 1e-4
    meta = read_meta(str(out))
    assert meta.labels == ["circle", "square", "triangle"]
    assert meta.input == {"name": "images", "shape": [1, 3, 32, 32], "layout": "NCHW", "dtype": "float32"}
    assert meta.preprocess["mean"] == [0.5, 0.5, 0.5] and meta.decoder["top_k"] == 3
    assert meta.source["checkpoint_sha256"] == sha256_file(ckpt) and meta.source["recipe"] == "test"
    assert meta.precision == "fp32" and meta.target == "jetson-nano"
    assert meta.extra["export"]["opset"] == 13
    # the file runs in ONNX Runtime and matches PyTorch
    from edgekit.desktop.train.models import load_checkpoint

    model, _ = load_checkpoint(ckpt)
    x = np.random.default_rng(5).standard_normal((1, 3, 32, 32)).astype(np.float32)
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
    np.testing.assert_allclose(got, model(torch.from_numpy(x)).detach().numpy(), atol=1e-4)


def test_cli_json_report_and_opset_for_another_target(tmp_path, capsys):
    ckpt = em.tiny_checkpoint(tmp_path / "best.pt")
    out = tmp_path / "m.onnx"
    assert main(["export", ckpt, "--target", "jetson-xavier-nx", "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["opset"] == 17 == opset_of(out)
    assert report["lint"]["target"] == "jetson-xavier-nx" and report["lint"]["tensorrt"].startswith("8.5")
    for key in ("path", "nodes_before", "nodes_after", "parity", "lint"):
        assert key in report


def test_no_simplify_keeps_the_raw_graph(tmp_path):
    ckpt = em.tiny_checkpoint(tmp_path / "best.pt")
    raw = export_model(ckpt, tmp_path / "raw.onnx", simplify=False, **QUIET)
    assert raw["nodes_after"] == raw["nodes_before"] and raw["simplified"] is False


def test_dynamic_batch_runs_other_batch_sizes(tmp_path):
    ckpt = em.tiny_checkpoint(tmp_path / "best.pt")
    out = tmp_path / "dyn.onnx"
    report = export_model(ckpt, out, batch="dynamic", **QUIET)
    assert report["input"]["shape"] == ["batch", 3, 32, 32]
    assert report["parity_inputs"] == 4            # three at batch 1, one at batch 2
    warnings = [p for p in report["lint"]["problems"] if p["op"] == "(input)"]
    assert warnings and warnings[0]["severity"] == "warning" and report["lint"]["ok"]
    x = np.zeros((3, 3, 32, 32), np.float32)
    assert ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0].shape == (3, 3)


@pytest.fixture(scope="module")
def factory_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("factories")
    (root / "userpkg_models.py").write_text(em.FACTORY_SOURCE)
    (root / "userpkg_broken.py").write_text("import numpy\nimport not_a_real_package_xyz\n")
    return root


def test_factory_source_with_labels_meta_and_weights(tmp_path, factory_dir, monkeypatch):
    monkeypatch.syspath_prepend(str(factory_dir))
    import userpkg_models

    weights = tmp_path / "w.pt"
    torch.save(userpkg_models.make().state_dict(), str(weights))
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\nd\ne\n")
    meta_yaml = tmp_path / "meta.yaml"
    meta_yaml.write_text("preprocess:\n  color: BGR\n  mean: [0, 0, 0]\n  std: [1, 1, 1]\n")
    out = tmp_path / "f.onnx"
    report = export_model("userpkg_models:make", out, input_size="24x40", weights=str(weights),
                          labels=str(labels), meta_overrides=str(meta_yaml), **QUIET)
    meta = read_meta(str(out))
    assert meta.labels == list("abcde") and meta.preprocess["color"] == "BGR"
    assert meta.input["shape"] == [1, 3, 24, 40]
    assert meta.source["kind"] == "factory" and meta.source["weights_sha256"] == sha256_file(str(weights))
    assert report["kind"] == "factory"


def test_torchscript_source(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "tiny.ts"
    torch.jit.trace(em.Tiny().eval(), torch.zeros(1, 3, 16, 16)).save(str(path))
    out = tmp_path / "ts.onnx"
    report = export_model(str(path), out, input_size=16, **QUIET)
    assert report["kind"] == "torchscript" and report["parity"]["logits"]["cosine"] > 0.9999
    meta = read_meta(str(out))
    assert meta.source["sha256"] == sha256_file(str(path))
    assert meta.labels == ["class_0", "class_1", "class_2"]        # named from the output size
    assert any("ImageNet" in n for n in report["notes"])            # the assumed preprocessing is said


def test_onnx_passthrough_adds_metadata_and_fixes_dynamic_dims(tmp_path):
    torch.manual_seed(0)
    src = tmp_path / "third_party.onnx"
    torch.onnx.export(em.Tiny().eval(), (torch.zeros(1, 3, 20, 20),), str(src), opset_version=13,
                      input_names=["input"], output_names=["prob"], dynamo=False,
                      dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}})
    (tmp_path / "labels.json").write_text(json.dumps(["x", "y", "z"]))
    out = tmp_path / "pass.onnx"
    report = export_model(str(src), out, input_size="20", labels=str(tmp_path / "labels.json"), **QUIET)
    assert report["kind"] == "onnx" and report["opset"] == 13 == opset_of(out)
    assert any("fixed the input" in n for n in report["notes"])
    meta = read_meta(str(out))
    assert meta.input["name"] == "input" and meta.input["shape"] == [1, 3, 20, 20]
    assert meta.labels == ["x", "y", "z"] and meta.source["sha256"] == sha256_file(str(src))
    assert report["parity"]["prob"]["max_abs"] < 1e-5


def test_onnx_passthrough_above_the_target_opset_is_converted(tmp_path):
    """Relu-14 has no down-adapter in onnx.version_converter; edgekit's per-op table converts it
    (tests/desktop/test_opset.py covers the ops that block)."""
    src = tmp_path / "new.onnx"
    torch.onnx.export(em.Tiny().eval(), (torch.zeros(1, 3, 20, 20),), str(src), opset_version=17,
                      input_names=["input"], dynamo=False)
    report = export_model(str(src), tmp_path / "o.onnx", **QUIET)
    assert report["opset"] == 13 == opset_of(tmp_path / "o.onnx") and report["lint"]["ok"]
    assert any("from opset 17 to 13" in n for n in report["notes"]) and report["parity_inputs"] >= 3
    report = export_model(str(src), tmp_path / "o.onnx", target="jetson-xavier-nx", **QUIET)
    assert report["opset"] == 17


def test_onnx_passthrough_with_two_inputs_is_refused(tmp_path):
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["y"])], "g",
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, 8, 8]) for n in "ab"],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    src = tmp_path / "two.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(src))
    with pytest.raises(ModelError, match="2 inputs"):
        export_model(str(src), tmp_path / "o.onnx", **QUIET)


def test_onnx_passthrough_with_a_plugin_op_skips_parity_and_says_so(tmp_path):
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 1, 1], [0.1] * 12)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["images", "w"], ["c"], name="conv"),
         helper.make_node("EfficientNMS_TRT", ["c"], ["y"], domain="trt.plugins", name="nms")], "g",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("trt.plugins", 1)])
    model.ir_version = 7
    src = tmp_path / "plugin.onnx"
    onnx.save(model, str(src))
    report = export_model(str(src), tmp_path / "o.onnx", labels=["a", "b", "c", "d"], **QUIET)
    assert report["parity"] == {} and report["parity_inputs"] == 0
    assert any("parity skipped" in n and "EfficientNMS_TRT" in n for n in report["notes"])
    assert [p["op"] for p in report["lint"]["problems"]] == ["trt.plugins:EfficientNMS_TRT"]


def test_onnx_passthrough_with_dynamic_size_needs_input_size(tmp_path):
    src = tmp_path / "dyn.onnx"
    torch.onnx.export(em.Tiny().eval(), (torch.zeros(1, 3, 20, 20),), str(src), opset_version=13,
                      input_names=["input"], dynamo=False, dynamic_axes={"input": {2: "h", 3: "w"}})
    with pytest.raises(ConfigError, match="--input-size"):
        export_model(str(src), tmp_path / "o.onnx", **QUIET)


# -- errors: one line, exit 2, nothing written ---------------------------------------------------------------
def _cli_error(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and err.splitlines()[-1] == errors[0] and "Traceback" not in err
    return errors[0]


def test_missing_file(tmp_path, capsys):
    err = _cli_error(["export", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "o.onnx")], capsys)
    assert "not found" in err and "nope.pt" in err
    assert _leftovers(tmp_path) == []


def test_module_that_fails_to_import_shows_the_import_error(tmp_path, factory_dir, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(factory_dir))
    err = _cli_error(["export", "userpkg_broken:make", "--out", str(tmp_path / "o.onnx")], capsys)
    assert "cannot import userpkg_broken" in err and "not_a_real_package_xyz" in err
    assert _leftovers(tmp_path) == []


def test_factory_returning_something_else(tmp_path, factory_dir, monkeypatch):
    monkeypatch.syspath_prepend(str(factory_dir))
    with pytest.raises(ModelError, match="returned dict, not a torch.nn.Module"):
        export_model("userpkg_models:not_a_model", tmp_path / "o.onnx", **QUIET)
    assert _leftovers(tmp_path) == []


def test_weights_with_mismatched_keys_are_listed(tmp_path, factory_dir, monkeypatch):
    monkeypatch.syspath_prepend(str(factory_dir))
    state = em.Tiny().state_dict()
    torch.save(state, str(tmp_path / "other.pt"))
    with pytest.raises(ModelError) as info:
        export_model("userpkg_models:make", tmp_path / "o.onnx", weights=str(tmp_path / "other.pt"), **QUIET)
    text = str(info.value)
    assert "missing" in text and "conv.weight" in text and "unexpected" in text and "features.0.weight" in text
    assert _leftovers(tmp_path) == []


def test_model_failing_on_its_input_names_the_module(tmp_path):
    ckpt = em.tiny_checkpoint(tmp_path / "best.pt")
    data = torch.load(ckpt, weights_only=True)
    data["meta"]["input"]["shape"] = [1, 4, 32, 32]      # 4 channels into a 3-channel conv
    torch.save(data, ckpt)
    with pytest.raises(ModelError, match=r"module features\.0 \(Conv2d\)"):
        export_model(ckpt, tmp_path / "o.onnx", **QUIET)


def test_model_failing_to_trace_names_the_module(tmp_path, monkeypatch):
    class NumpyHead(torch.nn.Module):
        def forward(self, x):
            return torch.from_numpy(np.tanh(x.numpy())) + x

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 2, 1)
            self.head = torch.nn.Sequential(torch.nn.ReLU(), NumpyHead())

        def forward(self, x):
            return self.head(self.conv(x)).mean((2, 3))

    _register_factory(monkeypatch, "Net", Net)
    with pytest.raises(ModelError, match=r"failed to trace.*module head\.1 \(NumpyHead\)"):
        export_model("edgekit_test_factories:Net", tmp_path / "o.onnx", input_size=8, **QUIET)
    assert _leftovers(tmp_path) == []


def _register_factory(monkeypatch, name, factory):
    import sys
    import types

    module = sys.modules.get("edgekit_test_factories") or types.ModuleType("edgekit_test_factories")
    setattr(module, name, factory)
    monkeypatch.setitem(sys.modules, "edgekit_test_factories", module)


def test_op_above_the_target_opset_is_named(tmp_path, monkeypatch):
    _register_factory(monkeypatch, "GridSampler", em.GridSampler)
    with pytest.raises(ExportError, match=r"aten::grid_sampler.*needs ONNX opset 16.*at most 13"):
        export_model("edgekit_test_factories:GridSampler", tmp_path / "o.onnx", input_size=8, **QUIET)
    # the same model is fine where TensorRT parses opset 17
    report = export_model("edgekit_test_factories:GridSampler", tmp_path / "ok.onnx", input_size=8,
                          target="jetson-xavier-nx", labels=["l%d" % i for i in range(48)], **QUIET)
    assert report["opset"] == 17


def test_lint_problem_is_fatal_with_strict_only(tmp_path, monkeypatch, capsys):
    _register_factory(monkeypatch, "Masked", em.Masked)
    out = tmp_path / "masked.onnx"
    err = _cli_error(["export", "edgekit_test_factories:Masked", "--input-size", "8", "--strict",
                      "--out", str(out)], capsys)
    assert "--strict" in err and "NonZero" in err
    assert _leftovers(tmp_path) == []
    with pytest.raises(LintError):
        export_model("edgekit_test_factories:Masked", out, input_size=8, strict=True, **QUIET)
    assert _leftovers(tmp_path) == []
    report = export_model("edgekit_test_factories:Masked", out, input_size=8, labels=["only"], **QUIET)
    assert not report["lint"]["ok"] and any(p["op"] == "NonZero" for p in report["lint"]["problems"])
    assert os.path.exists(str(out))


def test_upsampling_exports_clean_for_tensorrt_8_2_with_dynamic_batch(tmp_path, monkeypatch):
    _register_factory(monkeypatch, "Upsampler", em.Upsampler)
    report = export_model("edgekit_test_factories:Upsampler", tmp_path / "up.onnx", input_size=16, batch="dynamic",
                          labels=list("abcd"), **QUIET)
    assert report["lint"]["ok"] and [p["op"] for p in report["lint"]["problems"]] == ["(input)"]
    resizes = [n for n in onnx.load(str(tmp_path / "up.onnx")).graph.node if n.op_type == "Resize"]
    assert len(resizes) == 3


def test_dict_outputs_keep_their_names(tmp_path, monkeypatch):
    _register_factory(monkeypatch, "TwoHeads", em.TwoHeads)
    meta = {"task": "detection", "labels": ["a", "b"], "decoder": {"type": "centernet", "stride": 1},
            "preprocess": {"resize": "letterbox"}}
    report = export_model("edgekit_test_factories:TwoHeads", tmp_path / "det.onnx", input_size=16,
                          meta_overrides=meta, **QUIET)
    assert list(report["parity"]) == ["heatmap", "regression"]
    assert [o.name for o in onnx.load(str(tmp_path / "det.onnx")).graph.output] == ["heatmap", "regression"]
    assert read_meta(str(tmp_path / "det.onnx")).decoder["type"] == "centernet"


def test_parity_failure_lists_every_failing_output(tmp_path, monkeypatch):
    _register_factory(monkeypatch, "Drifting", em.Drifting)
    with pytest.raises(ParityError) as info:
        export_model("edgekit_test_factories:Drifting", tmp_path / "o.onnx", input_size=8, **QUIET)
    failing = sorted(f["output"] for f in info.value.failures)
    assert failing == ["output0", "output1"]        # output2 ("stable") passes
    assert "2 output(s)" in str(info.value)
    assert _leftovers(tmp_path) == []
    # a tolerance override is honoured
    with pytest.raises(ParityError):
        export_model("edgekit_test_factories:Drifting", tmp_path / "o.onnx", input_size=8,
                     tolerance={"atol": 1e-3}, **QUIET)


def test_argument_parsing():
    assert parse_input_size("224") == (224, 224) and parse_input_size("256x320") == (256, 320)
    assert parse_input_size(None) is None
    assert parse_batch("dynamic") == "dynamic" and parse_batch("4") == 4
    for bad in ("2x", "0", "abc"):
        with pytest.raises(ConfigError):
            parse_input_size(bad)
    with pytest.raises(ConfigError):
        parse_batch("0")


def test_opset_above_the_target_is_refused_and_lower_is_honoured(tmp_path):
    ckpt = em.tiny_checkpoint(tmp_path / "best.pt")
    with pytest.raises(ConfigError, match="--opset 17 is above what jetson-nano parses"):
        export_model(ckpt, tmp_path / "o.onnx", opset=17, **QUIET)
    assert export_model(ckpt, tmp_path / "o.onnx", opset=11, **QUIET)["opset"] == 11 == opset_of(tmp_path / "o.onnx")


def test_bad_meta_yaml_fails_before_exporting(tmp_path):
    from edgekit.errors import MetadataError

    ckpt = em.tiny_checkpoint(tmp_path / "best.pt")
    (tmp_path / "meta.yaml").write_text("decoder:\n  type: ssd-mobilenet\n")
    lines = []
    with pytest.raises(MetadataError, match="decoder.type"):
        export_model(ckpt, tmp_path / "o.onnx", meta_overrides=str(tmp_path / "meta.yaml"), log=lines.append)
    assert not any(line.startswith("exported") for line in lines) and _leftovers(tmp_path) == []


def test_whole_pickled_model_is_not_unpickled(tmp_path):
    torch.save(em.Tiny(), str(tmp_path / "whole.pt"))
    with pytest.raises(ModelError, match="not loaded"):
        export_model(str(tmp_path / "whole.pt"), tmp_path / "o.onnx", **QUIET)


def test_unknown_torchvision_name_suggests(tmp_path):
    with pytest.raises(ModelError, match="resnet18"):
        export_model("torchvision:resnet19", tmp_path / "o.onnx", **QUIET)


def test_torchvision_non_classifier_is_refused(tmp_path):
    with pytest.raises(ModelError, match="not an image classifier"):
        export_model("torchvision:fcn_resnet50", tmp_path / "o.onnx", **QUIET)


def test_state_dict_given_as_source_says_what_to_do(tmp_path):
    torch.save(em.Tiny().state_dict(), str(tmp_path / "sd.pt"))
    with pytest.raises(ModelError, match="--weights"):
        export_model(str(tmp_path / "sd.pt"), tmp_path / "o.onnx", **QUIET)


def test_simplifier_failure_points_to_no_simplify(tmp_path, monkeypatch):
    import onnxslim

    def broken(model, *args, **kwargs):
        raise RuntimeError("internal simplifier bug")

    monkeypatch.setattr(onnxslim, "slim", broken)
    ckpt = em.tiny_checkpoint(tmp_path / "best.pt")
    with pytest.raises(ExportError, match="--no-simplify"):
        export_model(ckpt, tmp_path / "o.onnx", **QUIET)
    assert _leftovers(tmp_path) == []
    assert export_model(ckpt, tmp_path / "o.onnx", simplify=False, **QUIET)["simplified"] is False


def test_cli_prints_the_parity_table_for_people(tmp_path, capsys):
    ckpt = em.tiny_checkpoint(tmp_path / "best.pt")
    assert main(["export", ckpt, "--out", str(tmp_path / "m.onnx")]) == 0
    out = capsys.readouterr().out
    assert "max_abs" in out and "logits" in out and "lint ok" in out and "opset 13" in out
