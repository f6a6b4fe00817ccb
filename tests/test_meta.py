import json

import numpy as np
import pytest

from edgekit import meta as meta_mod
from edgekit.errors import MetadataError, ModelError
from edgekit.meta import ModelMeta, attach_to_onnx, read_meta, read_onnx_metadata_props


def sample_meta(**changes):
    data = {
        "task": "classification",
        "labels": ["circle", "square"],
        "input": {"name": "images", "shape": [1, 3, 32, 32]},
        "preprocess": {"color": "RGB", "resize": "stretch", "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
        "decoder": {"type": "classification", "top_k": 2},
    }
    data.update(changes)
    return ModelMeta.from_dict(data)


def tiny_onnx(path, meta=None, extra_props=None):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    node = helper.make_node("Flatten", ["images"], ["flat"])
    gemm_w = helper.make_tensor("w", TensorProto.FLOAT, [3 * 32 * 32, 2], np.zeros(3 * 32 * 32 * 2, np.float32))
    node2 = helper.make_node("MatMul", ["flat", "w"], ["logits"])
    graph = helper.make_graph([node, node2], "g",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2])], [gemm_w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    for key, value in (extra_props or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    if meta is not None:
        attach_to_onnx(model, meta)
    onnx.save(model, str(path))
    return path


def test_round_trip_through_json():
    m = sample_meta()
    again = ModelMeta.from_json(m.to_json())
    assert again.to_dict() == m.to_dict()
    assert again.input_hw == (32, 32)
    assert again.preprocess["pad_value"] == 114


def test_onnx_reader_matches_onnx_library(tmp_path):
    onnx = pytest.importorskip("onnx")
    m = sample_meta()
    path = tiny_onnx(tmp_path / "m.onnx", m, extra_props={"names": "{0: 'a'}", "unicode": "zürich ✓"})
    props = read_onnx_metadata_props(str(path))
    expected = dict((p.key, p.value) for p in onnx.load(str(path)).metadata_props)
    assert props == expected
    assert props["unicode"] == "zürich ✓"
    assert read_meta(str(path)).to_dict() == m.to_dict()


def test_attach_replaces_previous_block(tmp_path):
    onnx = pytest.importorskip("onnx")
    path = tiny_onnx(tmp_path / "m.onnx", sample_meta())
    model = onnx.load(str(path))
    attach_to_onnx(model, sample_meta(precision="fp16"))
    assert [p.key for p in model.metadata_props].count("edgekit") == 1
    onnx.save(model, str(path))
    assert read_meta(str(path)).precision == "fp16"


def test_model_without_metadata_is_a_clear_error(tmp_path):
    path = tiny_onnx(tmp_path / "bare.onnx")
    with pytest.raises(MetadataError) as exc:
        read_meta(str(path))
    assert "--meta" in exc.value.one_line()
    assert read_meta(str(path), required=False) is None


def test_truncated_onnx_is_a_model_error(tmp_path):
    path = tiny_onnx(tmp_path / "m.onnx", sample_meta())
    data = path.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) - 7])
    with pytest.raises(ModelError):
        read_onnx_metadata_props(str(cut))


def test_missing_file():
    with pytest.raises(ModelError):
        read_meta("/nonexistent/model.onnx")


@pytest.mark.parametrize("changes, word", [
    ({"task": "segmentation"}, "task"),
    ({"labels": []}, "labels"),
    ({"input": {"name": "x", "shape": [1, 3, 32]}}, "input.shape"),
    ({"input": {"name": "x", "shape": [1, 3, "h", 32]}}, "input.shape"),
    ({"preprocess": {"color": "YUV"}}, "preprocess.color"),
    ({"preprocess": {"std": [1, 0, 1]}}, "preprocess.std"),
    ({"decoder": {"type": "ssd-mobilenet"}}, "decoder.type"),
    ({"preprocess": {"pad_position": "bottom"}}, "preprocess.pad_position"),
    ({"input": {"name": "x", "shape": [1, 3, 32, 32], "layout": "CHW"}}, "input.shape"),
    ({"precision": "int4"}, "precision"),
])
def test_validation_names_the_key(changes, word):
    with pytest.raises(MetadataError) as exc:
        sample_meta(**changes)
    assert word in str(exc.value)


def test_newer_schema_is_refused():
    data = sample_meta().to_dict()
    data["schema_version"] = meta_mod.SCHEMA_VERSION + 1
    with pytest.raises(MetadataError) as exc:
        ModelMeta.from_dict(data)
    assert "Upgrade edgekit" in str(exc.value)


def test_engine_sidecar(tmp_path):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\0")
    (tmp_path / "m.engine.json").write_text(json.dumps({"key": {"precision": "fp16"},
                                                        "meta": sample_meta(precision="fp16").to_dict()}))
    assert read_meta(str(engine)).precision == "fp16"


def test_partial_meta_yaml_merges_over_the_models_own(tmp_path):
    from edgekit.meta import load_meta_yaml, merge_meta

    path = tiny_onnx(tmp_path / "m.onnx", sample_meta())
    (tmp_path / "labels.yaml").write_text("labels: [a, b, c]\npreprocess: {color: BGR}\n")
    meta = load_meta_yaml(str(tmp_path / "labels.yaml"), model=str(path))
    base = sample_meta()
    assert meta.labels == ["a", "b", "c"] and meta.preprocess["color"] == "BGR"
    assert meta.preprocess["mean"] == base.preprocess["mean"] and meta.decoder == base.decoder
    with pytest.raises(MetadataError, match="lacks"):
        load_meta_yaml(str(tmp_path / "labels.yaml"))            # no model to merge over
    merged = merge_meta({"decoder": {"type": "yolox", "decoded": False, "strides": [8]}},
                        {"decoder": {"type": "ssd"}})
    assert merged["decoder"] == {"type": "ssd"}                  # another decoder: replaced whole
    assert merge_meta({"decoder": {"type": "yolox", "decoded": False}}, {"decoder": {"decoded": True}}) == {
        "decoder": {"type": "yolox", "decoded": True}}
