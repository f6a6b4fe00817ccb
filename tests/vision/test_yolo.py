"""YOLOv5/YOLOv8 decoders on synthetic outputs with known boxes, and on tiny ONNX models whose
outputs have the Ultralytics shapes and whose metadata_props are written the way Ultralytics does."""

import numpy as np
import pytest

from edgekit.errors import MetadataError, ModelError
from edgekit.meta import ModelMeta
from edgekit.vision.decoders import decode
from edgekit.vision.preprocess import LetterboxInfo, Preprocessor
from edgekit.vision.yolo import (decode_v5, decode_v8, detect_yolo_format, read_onnx_io_shapes,
                                 yolo_meta_from_onnx)

LABELS = ["cat", "dog", "bird"]
C = len(LABELS)
N = 50
# (class, score, cx, cy, w, h) in model-input pixels (64x64 input)
TRUTH = [(0, 0.9, 20.0, 20.0, 10.0, 8.0), (2, 0.8, 44.0, 40.0, 12.0, 16.0), (1, 0.6, 20.0, 21.0, 10.0, 8.0)]


def make_meta(kind, **decoder):
    params = {"type": kind, "score_threshold": 0.25, "iou_threshold": 0.45, "max_detections": 100}
    params.update(decoder)
    return ModelMeta(task="detection", labels=LABELS,
                     input={"name": "images", "shape": [1, 3, 64, 64]},
                     preprocess={"color": "RGB", "resize": "letterbox"}, decoder=params)


def v5_rows(seed=0):
    """(N, 5+C): TRUTH rows plus duplicates of the first box (lower score) and noise below threshold."""
    rng = np.random.RandomState(seed)
    rows = np.zeros((N, 5 + C), dtype=np.float32)
    rows[:, :4] = rng.uniform(5, 60, size=(N, 4))
    rows[:, 4] = rng.uniform(0, 0.2, size=N)                # objectness of noise: below threshold
    rows[:, 5:] = rng.uniform(0, 1, size=(N, C))
    for i, (cls, score, cx, cy, w, h) in enumerate(TRUTH):
        rows[i, :4] = [cx, cy, w, h]
        rows[i, 4] = 1.0
        rows[i, 5:] = 0.05
        rows[i, 5 + cls] = score
    rows[3, :4] = [21.0, 20.0, 10.0, 8.0]                    # near-duplicate of the cat, same class
    rows[3, 4], rows[3, 5:] = 1.0, [0.7, 0.0, 0.0]
    rows[4, :4], rows[4, 4], rows[4, 5:] = [40, 10, 6, 6], 0.5, [0.0, 0.45, 0.0]   # 0.5 * 0.45 < 0.25
    return rows


def v8_rows(seed=0):
    """(N, 4+C) with the same boxes: YOLOv8 has no objectness."""
    rows5 = v5_rows(seed)
    rows = np.concatenate([rows5[:, :4], rows5[:, 5:] * rows5[:, 4:5]], axis=1)
    return rows


def expected_boxes_xyxy():
    return {cls: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2] for cls, _, cx, cy, w, h in TRUTH}


@pytest.mark.parametrize("kind", ["yolov5", "yolov8"])
def test_known_boxes_are_found_in_input_pixels(kind):
    if kind == "yolov5":
        out, dec = v5_rows()[None], decode_v5
    else:
        out, dec = v8_rows()[None].transpose(0, 2, 1), decode_v8
    result = dec({"output0": out}, make_meta(kind))[0]
    dets = result["detections"]
    assert result["task"] == "detection"
    assert [d["label"] for d in dets] == ["cat", "bird", "dog"]            # best score first
    np.testing.assert_allclose([d["score"] for d in dets], [0.9, 0.8, 0.6], rtol=1e-5)
    expected = expected_boxes_xyxy()
    for d in dets:
        np.testing.assert_allclose(d["box"], expected[d["index"]], atol=1e-4)


def test_class_agnostic_nms_suppresses_the_other_class():
    dets = decode_v5(v5_rows()[None], make_meta("yolov5", class_agnostic=True))[0]["detections"]
    assert [d["label"] for d in dets] == ["cat", "bird"]


def test_thresholds_and_max_detections_come_from_meta():
    dets = decode_v5(v5_rows()[None], make_meta("yolov5", score_threshold=0.7))[0]["detections"]
    assert [d["label"] for d in dets] == ["cat", "bird"]
    dets = decode_v8(v8_rows()[None].transpose(0, 2, 1), make_meta("yolov8", max_detections=1))[0]["detections"]
    assert [d["label"] for d in dets] == ["cat"]
    # a looser IoU threshold keeps the near-duplicate cat (IoU 0.82)
    dets = decode_v5(v5_rows()[None], make_meta("yolov5", iou_threshold=0.9))[0]["detections"]
    assert [d["label"] for d in dets] == ["cat", "bird", "cat", "dog"]


def test_letterbox_maps_back_to_frame_pixels():
    # a 128x64 frame letterboxed into 64x64: scale 0.5, 16 px of padding top and bottom
    pre = Preprocessor((64, 64), resize="letterbox")
    _, info = pre(np.zeros((64, 128, 3), dtype=np.uint8))
    assert (info.scale_x, info.pad_x, info.pad_y) == (0.5, 0.0, 16.0)
    rows = v5_rows()
    result = decode_v5(rows[None], make_meta("yolov5"), [info])[0]
    cat = result["detections"][0]
    x1, y1, x2, y2 = expected_boxes_xyxy()[0]
    np.testing.assert_allclose(cat["box"], [x1 * 2, (y1 - 16) * 2, x2 * 2, (y2 - 16) * 2], atol=1e-4)


def test_batch_of_two_images_each_with_its_info():
    out = np.stack([v5_rows(0), v5_rows(1)])
    infos = [LetterboxInfo(1, 1, 0, 0, 64, 64), LetterboxInfo(0.5, 0.5, 0, 0, 128, 128)]
    results = decode_v5(out, make_meta("yolov5"), infos)
    assert len(results) == 2
    np.testing.assert_allclose(np.array(results[1]["detections"][0]["box"]),
                               np.array(results[0]["detections"][0]["box"]) * 2, atol=1e-4)


def test_empty_output_gives_no_detections():
    rows = v5_rows()
    rows[:, 4] = 0.0
    assert decode_v5(rows[None], make_meta("yolov5"))[0]["detections"] == []
    assert decode_v8(np.zeros((1, 4 + C, 10), np.float32), make_meta("yolov8"))[0]["detections"] == []


def test_end2end_rows():
    rows = np.zeros((1, 5, 6), np.float32)
    rows[0, 0] = [1, 2, 11, 12, 0.3, 2]
    rows[0, 1] = [5, 5, 15, 15, 0.9, 1]
    rows[0, 2] = [5, 5, 15, 15, 0.1, 0]
    dets = decode_v8(rows, make_meta("yolov8", end2end=True))[0]["detections"]
    assert [(d["label"], d["box"]) for d in dets] == [("dog", [5, 5, 15, 15]), ("bird", [1, 2, 11, 12])]


def test_registry_dispatches_and_bad_shapes_are_clear_errors():
    out = v5_rows()[None]
    assert decode({"o": out}, make_meta("yolov5"))[0]["detections"][0]["label"] == "cat"
    with pytest.raises(ModelError, match="3 dimensions"):
        decode_v5(out[0], make_meta("yolov5"))
    with pytest.raises(ModelError, match="no output 'boxes'"):
        decode_v5({"o": out}, make_meta("yolov5", output="boxes"))


# -- recognising Ultralytics metadata ------------------------------------------------------------
V8_PROPS = {"description": "Ultralytics YOLOv8n model", "author": "Ultralytics", "version": "8.3.0",
            "stride": "32", "task": "detect", "batch": "1", "imgsz": "[64, 64]",
            "names": "{0: 'cat', 1: 'dog', 2: 'bird'}"}
V5_PROPS = {"stride": "32", "names": "{0: 'cat', 1: 'dog', 2: 'bird'}"}     # yolov5 export.py


def test_detect_v8_props():
    meta = detect_yolo_format(V8_PROPS, [[1, 4 + C, 84]], [1, 3, 64, 64])
    assert meta.decoder["type"] == "yolov8"
    assert meta.labels == LABELS
    assert meta.input_hw == (64, 64)
    assert meta.preprocess == {"color": "RGB", "resize": "letterbox", "mean": [0.0] * 3, "std": [1.0] * 3,
                               "pad_value": 114}
    assert meta.source["framework"] == "ultralytics"


def test_detect_v5_props_from_shape_and_input():
    meta = detect_yolo_format(V5_PROPS, [[1, 252, 5 + C]], [1, 3, 96, 128])
    assert meta.decoder["type"] == "yolov5"
    assert meta.input_hw == (96, 128)


def test_detect_rejects_and_ignores():
    assert detect_yolo_format({"edgekit": "{}"}, [[1, 7, 10]]) is None
    with pytest.raises(MetadataError, match="segment"):
        detect_yolo_format(dict(V8_PROPS, task="segment"), [[1, 39, 84]])
    with pytest.raises(MetadataError, match="neither"):
        detect_yolo_format(V8_PROPS, [[1, 10, 84]])
    with pytest.raises(MetadataError, match="input size"):
        detect_yolo_format(V5_PROPS, [[1, 252, 8]], [1, 3, "h", "w"])
    with pytest.raises(MetadataError, match="literal"):
        detect_yolo_format(dict(V8_PROPS, names="{0: cat"), [[1, 7, 84]])


# -- tiny ONNX models ---------------------------------------------------------------------------
def tiny_yolo_onnx(path, const, props, hw=(64, 64)):
    """images (1,3,H,W) -> output0 = const + 0 * mean(images): the Ultralytics output shape, fixed values."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["const", "z"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, hw[0], hw[1]])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(const.shape))],
        initializer=[numpy_helper.from_array(const.astype(np.float32), "const"),
                     numpy_helper.from_array(np.zeros((), np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("kind", ["yolov5", "yolov8"])
def test_tiny_onnx_end_to_end_through_predictor(tmp_path, kind):
    pytest.importorskip("onnxruntime")
    from edgekit.predictor import Predictor

    if kind == "yolov5":
        const, props = v5_rows()[None], V5_PROPS
    else:
        const, props = v8_rows()[None].transpose(0, 2, 1), V8_PROPS
    path = tiny_yolo_onnx(tmp_path / ("%s.onnx" % kind), const, props)
    inputs, outputs = read_onnx_io_shapes(str(path))
    assert inputs == [("images", [1, 3, 64, 64])]
    assert outputs == [("output0", list(const.shape))]
    meta = yolo_meta_from_onnx(str(path))
    assert meta.decoder["type"] == kind and meta.labels == LABELS
    frame = np.zeros((32, 64, 3), dtype=np.uint8)           # letterboxed: scale 1, pad_y 16
    with Predictor.open(str(path), backend="onnxruntime", meta=meta) as model:
        result = model.predict(frame)
    cat = result["detections"][0]
    assert cat["label"] == "cat"
    x1, y1, x2, y2 = expected_boxes_xyxy()[0]
    np.testing.assert_allclose(cat["box"], [x1, y1 - 16, x2, y2 - 16], atol=1e-4)
    assert [d["label"] for d in result["detections"]] == ["cat", "bird", "dog"]


def test_onnx_without_ultralytics_props_is_not_recognised(tmp_path):
    path = tiny_yolo_onnx(tmp_path / "plain.onnx", v5_rows()[None], {"producer": "someone"})
    assert yolo_meta_from_onnx(str(path)) is None


def test_read_meta_recognises_an_ultralytics_export(tmp_path):
    """read_meta (and so Predictor.open, the daemon, the profiler) needs no --meta for these."""
    pytest.importorskip("onnxruntime")
    from edgekit.meta import read_meta
    from edgekit.predictor import Predictor

    path = str(tiny_yolo_onnx(tmp_path / "yolov8n.onnx", v8_rows()[None].transpose(0, 2, 1), V8_PROPS))
    meta = read_meta(path)
    assert meta.decoder["type"] == "yolov8" and meta.source["framework"] == "ultralytics"
    with Predictor.open(path, backend="onnxruntime") as model:
        assert model.predict(np.zeros((64, 64, 3), np.uint8))["detections"][0]["label"] == "cat"
    plain = str(tiny_yolo_onnx(tmp_path / "plain.onnx", v5_rows()[None], {}))
    with pytest.raises(MetadataError, match="carries no edgekit metadata"):
        read_meta(plain)
