"""The CenterNet decoder: peaks, boxes in frame pixels via LetterboxInfo, top-k, threshold, NMS."""

import numpy as np
import pytest

from edgekit.meta import ModelMeta
from edgekit.vision.centernet import decode, decode_image, max_pool3, peaks, to_eval_tuples
from edgekit.vision.decoders import get_decoder
from edgekit.vision.preprocess import Preprocessor


def meta(**decoder):
    params = {"type": "centernet", "stride": 4, "score_threshold": 0.3, "top_k": 100, "nms_iou": None}
    params.update(decoder)
    return ModelMeta(task="detection", labels=["a", "b"], input={"name": "images", "shape": [1, 3, 64, 64]},
                     preprocess={"resize": "letterbox"}, decoder=params)


def outputs_with(objects, classes=2, size=16):
    """objects: (cls, cell_x, cell_y, dx, dy, w_cells, h_cells, score)."""
    heat = np.zeros((1, classes, size, size), np.float32)
    reg = np.zeros((1, 4, size, size), np.float32)
    for c, x, y, dx, dy, w, h, s in objects:
        heat[0, c, y, x] = s
        heat[0, c, y, x + 1] = s * 0.5          # a shoulder, not a peak
        reg[0, :, y, x] = (dx, dy, w, h)
    return {"heatmap": heat, "regression": reg}


def test_max_pool3_matches_a_direct_loop():
    rng = np.random.default_rng(0)
    heat = rng.random((2, 5, 7)).astype(np.float32)
    pooled = max_pool3(heat)
    for c in range(2):
        for y in range(5):
            for x in range(7):
                window = heat[c, max(0, y - 1):y + 2, max(0, x - 1):x + 2]
                assert pooled[c, y, x] == window.max()


def test_peaks_drop_non_maxima_and_low_scores():
    out = outputs_with([(0, 3, 4, 0.5, 0.5, 2, 2, 0.9), (1, 10, 10, 0, 0, 1, 1, 0.2)])
    cls, ys, xs, scores = peaks(out["heatmap"][0], 0.3, 100)
    assert list(zip(cls, ys, xs)) == [(0, 4, 3)]
    assert scores[0] == pytest.approx(0.9)


def test_boxes_in_input_pixels():
    out = outputs_with([(1, 3, 4, 0.5, 0.25, 2.0, 3.0, 0.8)])
    boxes, scores, classes = decode_image(out["heatmap"][0], out["regression"][0], stride=4, score_threshold=0.3)
    cx, cy = (3 + 0.5) * 4, (4 + 0.25) * 4
    np.testing.assert_allclose(boxes[0], [cx - 4, cy - 6, cx + 4, cy + 6])
    assert classes.tolist() == [1]


def test_decode_maps_boxes_to_frame_pixels_through_letterbox():
    frame = np.zeros((32, 64, 3), np.uint8)                       # wide frame -> padded top and bottom
    pre = Preprocessor((64, 64), resize="letterbox")
    _, info = pre(frame)
    out = outputs_with([(0, 8, 8, 0.0, 0.0, 4.0, 2.0, 0.95)])
    result = decode(out, meta(), [info])[0]
    det = result["detections"][0]
    assert result["task"] == "detection" and det["label"] == "a" and det["index"] == 0
    # centre (32, 32) in input pixels, box 16x8; scale 1, pad_y 16 -> frame centre (32, 16)
    np.testing.assert_allclose(det["box"], [24, 12, 40, 20], atol=1e-4)
    assert to_eval_tuples(result)[0][:2] == (0, pytest.approx(0.95))


def test_registry_top_k_threshold_override_and_output_order():
    out = outputs_with([(0, 2, 2, 0, 0, 1, 1, 0.9), (0, 8, 8, 0, 0, 1, 1, 0.6), (1, 12, 12, 0, 0, 1, 1, 0.1)])
    fn = get_decoder("centernet")
    assert len(fn(out, meta(), None)[0]["detections"]) == 2
    assert len(fn(out, meta(top_k=1), None)[0]["detections"]) == 1
    assert len(decode(out, meta(), None, score_threshold=0.05)[0]["detections"]) == 3
    as_list = [out["regression"], out["heatmap"]]                  # order found from the shapes
    scores = [d["score"] for d in decode(as_list, meta(), None)[0]["detections"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 2


def test_optional_nms_removes_overlapping_same_class_boxes():
    out = outputs_with([(0, 4, 4, 0, 0, 4, 4, 0.9), (0, 6, 4, 0, 0, 4, 4, 0.8)])
    assert len(decode(out, meta(), None)[0]["detections"]) == 2
    assert len(decode(out, meta(nms_iou=0.3), None)[0]["detections"]) == 1


def test_class_agnostic_nms_keeps_one_class_per_object():
    """One object whose centre peaks in two class heatmaps: class-aware NMS keeps both, the
    class-agnostic one only the better class."""
    out = outputs_with([(0, 4, 4, 0, 0, 4, 4, 0.9), (1, 4, 4, 0, 0, 4, 4, 0.7)])
    assert sorted(d["index"] for d in decode(out, meta(nms_iou=0.5), None)[0]["detections"]) == [0, 1]
    kept = decode(out, meta(nms_iou=0.5, class_agnostic=True), None)[0]["detections"]
    assert [d["index"] for d in kept] == [0] and kept[0]["score"] == pytest.approx(0.9)


def test_wrong_output_count_is_a_model_error():
    from edgekit.errors import ModelError

    with pytest.raises(ModelError):
        decode({"x": np.zeros((1, 2, 4, 4))}, meta(), None)
