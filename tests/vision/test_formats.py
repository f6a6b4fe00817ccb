"""The third-party decoders on fixed arrays (device side: NumPy only).

Each test starts from known boxes in source-frame pixels, maps them into the model input the way the
preprocessing does (letterbox or stretch), writes them into the raw output tensors by inverting the
format's own encoding (grid offsets and log sizes for YOLOX, distance distributions for GFL heads,
normalised centres for RT-DETR, normalised corners for SSD...), decodes through the registry, and checks
the source-frame boxes to 1e-3. Recognition is checked on output signatures (names and shapes) alone.
"""

import math

import numpy as np
import pytest

from edgekit.errors import MetadataError, ModelError
from edgekit.meta import ModelMeta
from edgekit.vision.decoders import DECODERS, decode
from edgekit.vision.preprocess import Preprocessor
from edgekit.vision.recognise import COCO80, coco91, recognise

LABELS = ["cat", "dog", "bird"]
FRAME = np.zeros((96, 128, 3), np.uint8)        # 128x96 frame into a 64x64 input
# (class, score, x1, y1, x2, y2) in source-frame pixels
TRUTH = [(0, 0.9, 10.0, 12.0, 50.0, 40.0), (2, 0.8, 70.0, 30.0, 118.0, 90.0)]


def meta_for(decoder, resize="letterbox", labels=LABELS, hw=(64, 64), layout="NCHW", **pre):
    shape = [3, hw[0], hw[1]] if layout == "CHW" else [1, 3, hw[0], hw[1]]
    preprocess = dict({"color": "RGB", "resize": resize}, **pre)
    return ModelMeta(task="detection", labels=labels, input={"name": "images", "shape": shape, "layout": layout},
                     preprocess=preprocess, decoder=decoder)


def to_input(meta):
    """(LetterboxInfo, truth boxes in model-input pixels) for FRAME under ``meta``'s preprocessing."""
    _, info = Preprocessor.from_meta(meta)(FRAME)
    boxes = []
    for _, _, x1, y1, x2, y2 in TRUTH:
        boxes.append([x1 * info.scale_x + info.pad_x, y1 * info.scale_y + info.pad_y,
                      x2 * info.scale_x + info.pad_x, y2 * info.scale_y + info.pad_y])
    return info, np.array(boxes, np.float32)


def check(result, labels=LABELS, first=0):
    """The decoded detections are TRUTH (class ids shifted by ``first``), boxes to 1e-3 source pixels."""
    dets = result["detections"]
    assert len(dets) == len(TRUTH)
    for det, (cls, score, x1, y1, x2, y2) in zip(dets, TRUTH):
        assert det["index"] == cls + first and det["label"] == labels[cls + first]
        assert abs(det["score"] - score) < 1e-4
        np.testing.assert_allclose(det["box"], [x1, y1, x2, y2], atol=1e-3)


def xyxy_to_cxcywh(b):
    return np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]], np.float32)


def cells(hw, strides, ceil=False):
    """[(stride, col, row)] of every anchor in the formats' order."""
    out = []
    for s in strides:
        gh = int(math.ceil(hw[0] / float(s))) if ceil else hw[0] // s
        gw = int(math.ceil(hw[1] / float(s))) if ceil else hw[1] // s
        out += [(s, c, r) for r in range(gh) for c in range(gw)]
    return out


# -- Ultralytics end-to-end and RT-DETR ------------------------------------------------------------
def test_yolo_end2end_rows_in_input_pixels():
    meta = meta_for({"type": "yolo_end2end"})
    info, boxes = to_input(meta)
    rows = np.zeros((1, 300, 6), np.float32)
    for i, ((cls, score, *_), box) in enumerate(zip(TRUTH, boxes)):
        rows[0, i] = list(box) + [score, cls]
    rows[0, 2] = [1, 1, 5, 5, 0.1, 1]                     # below the threshold
    check(decode({"output0": rows}, meta, [info])[0])


@pytest.mark.parametrize("columns", ["scores", "class"])
def test_rtdetr_normalised_centres_both_layouts(columns):
    meta = meta_for({"type": "rtdetr"}, resize="stretch")
    info, boxes = to_input(meta)
    width = 4 + len(LABELS) if columns == "scores" else 6
    rows = np.zeros((1, 300, width), np.float32)
    rows[0, :, 4:] = 0.01
    for i, ((cls, score, *_), box) in enumerate(zip(TRUTH, boxes)):
        rows[0, 10 + i, :4] = xyxy_to_cxcywh(box) / 64.0
        if columns == "scores":
            rows[0, 10 + i, 4 + cls] = score
        else:
            rows[0, 10 + i, 4:] = [score, cls]
    check(decode([rows], meta, [info])[0])


# -- YOLOX ----------------------------------------------------------------------------------------
def yolox_rows(boxes, hw, decoded):
    anchors = cells(hw, (8, 16, 32))
    rows = np.zeros((1, len(anchors), 5 + len(LABELS)), np.float32)
    rows[0, :, 4] = 0.05
    for (cls, score, *_), box in zip(TRUTH, boxes):
        cx, cy, w, h = xyxy_to_cxcywh(box)
        s = 16
        index = anchors.index((s, int(cx // s), int(cy // s)))
        if decoded:
            rows[0, index, :4] = [cx, cy, w, h]
        else:
            rows[0, index, :4] = [cx / s - cx // s, cy / s - cy // s, math.log(w / s), math.log(h / s)]
        rows[0, index, 4] = 1.0
        rows[0, index, 5 + cls] = score
    return rows


@pytest.mark.parametrize("decoded", [False, True])
def test_yolox_raw_grid_and_decoded(decoded):
    meta = meta_for({"type": "yolox", "decoded": decoded}, **{"pad_position": "top_left", "color": "BGR"})
    info, boxes = to_input(meta)
    assert (info.pad_x, info.pad_y) == (0.0, 0.0)          # YOLOX puts the image at the top-left corner
    check(decode({"output": yolox_rows(boxes, (64, 64), decoded)}, meta, [info])[0])


def test_yolox_anchor_mismatch_is_a_clear_error():
    meta = meta_for({"type": "yolox"})
    with pytest.raises(ModelError, match="anchors"):
        decode({"output": np.zeros((1, 100, 8), np.float32)}, meta)


# -- GFL (NanoDet-Plus, PicoDet) ------------------------------------------------------------------
def gfl_arrays(boxes, hw, offset, reg_max=7):
    anchors = cells(hw, (8, 16, 32, 64), ceil=True)
    bins = reg_max + 1
    scores = np.full((1, len(anchors), len(LABELS)), 0.01, np.float32)
    dists = np.full((1, len(anchors), 4 * bins), -30.0, np.float32)
    for (cls, score, *_), box in zip(TRUTH, boxes):
        cx, cy = xyxy_to_cxcywh(box)[:2]
        s = 16
        col, row = int(cx // s), int(cy // s)
        index = anchors.index((s, col, row))
        centre = ((col + offset) * s, (row + offset) * s)
        sides = [centre[0] - box[0], centre[1] - box[1], box[2] - centre[0], box[3] - centre[1]]
        for k, d in enumerate(sides):
            v = d / s                                      # distance in bins, spread over two adjacent bins
            lo = int(math.floor(v))
            frac = v - lo
            dists[0, index, k * bins + lo] = math.log(max(1 - frac, 1e-12))
            if lo + 1 < bins:
                dists[0, index, k * bins + lo + 1] = math.log(max(frac, 1e-12))
        scores[0, index, cls] = score
    return scores, dists, anchors


@pytest.mark.parametrize("offset", [0.0, 0.5])
def test_gfl_single_output(offset):
    meta = meta_for({"type": "gfl", "cell_offset": offset}, resize="stretch", hw=(72, 72))
    info, boxes = to_input(meta)
    scores, dists, _ = gfl_arrays(boxes, (72, 72), offset)
    check(decode({"output": np.concatenate([scores, dists], axis=2)}, meta, [info])[0])


def test_gfl_per_level_outputs_in_any_order():
    meta = meta_for({"type": "gfl", "cell_offset": 0.5}, resize="stretch", hw=(72, 72))
    info, boxes = to_input(meta)
    scores, dists, anchors = gfl_arrays(boxes, (72, 72), 0.5)
    outputs, start = {}, 0
    for s in (8, 16, 32, 64):
        n = sum(1 for a in anchors if a[0] == s)
        outputs["reg_%d" % s] = dists[:, start:start + n]
        outputs["cls_%d" % s] = scores[:, start:start + n]
        start += n
    shuffled = dict(sorted(outputs.items(), key=lambda kv: kv[0][::-1]))
    check(decode(shuffled, meta, [info])[0])


def test_gfl_wrong_width_is_a_clear_error():
    with pytest.raises(ModelError, match="classes"):
        decode({"o": np.zeros((1, 85, 40), np.float32)}, meta_for({"type": "gfl"}, hw=(72, 72)))


# -- SSD (jetson-inference) and torchvision ---------------------------------------------------------
def ssd_arrays(boxes, hw, anchors=128, seed=0):
    """(scores (1, A, 1 + C) with the background first, boxes (1, A, 4) corners normalised to 0..1)."""
    scores = np.zeros((1, anchors, 1 + len(LABELS)), np.float32)
    scores[0, :, 0] = 1.0                                  # background everywhere ...
    out_boxes = np.random.RandomState(seed).uniform(0, 1, (1, anchors, 4)).astype(np.float32)
    for i, ((cls, score, *_), box) in enumerate(zip(TRUTH, boxes)):
        scores[0, 20 + i] = (1 - score) / len(LABELS)
        scores[0, 20 + i, 1 + cls] = score                 # ... but where the objects are
        out_boxes[0, 20 + i] = box / np.array([hw[1], hw[0], hw[1], hw[0]], np.float32)
    return scores, out_boxes


def test_ssd_scores_and_normalised_corners():
    labels = ["BACKGROUND"] + LABELS
    meta = meta_for({"type": "ssd"}, resize="stretch", labels=labels)
    info, boxes = to_input(meta)
    scores, out_boxes = ssd_arrays(boxes, (64, 64))
    check(decode({"scores": scores, "boxes": out_boxes}, meta, [info])[0], labels=labels, first=1)


def test_torchvision_boxes_scores_labels_batchless():
    meta = meta_for({"type": "torchvision"}, resize="stretch", layout="CHW", labels=["__background__"] + LABELS)
    tensor, info = Preprocessor.from_meta(meta)(FRAME)
    assert tensor.shape == (3, 64, 64)                     # one image, no batch axis
    _, boxes = to_input(meta)
    scores = np.array([0.8, 0.9, 0.1], np.float32)
    labels = np.array([3, 1, 2], np.int64)
    out = np.stack([boxes[1], boxes[0], [0, 0, 5, 5]]).astype(np.float32)
    result = decode({"boxes": out, "scores": scores, "labels": labels}, meta, [info])[0]
    assert [d["label"] for d in result["detections"]] == ["cat", "bird"]
    for det, (_cls, _score, x1, y1, x2, y2) in zip(result["detections"], TRUTH):
        np.testing.assert_allclose(det["box"], [x1, y1, x2, y2], atol=1e-3)


# -- recognition from output signatures -------------------------------------------------------------
def test_signatures_are_recognised():
    yolox = recognise({}, [("images", [1, 3, 416, 416])], [("output", [1, 3549, 85])])
    assert yolox.decoder["type"] == "yolox" and yolox.labels == COCO80
    assert yolox.preprocess["color"] == "BGR" and yolox.preprocess["pad_position"] == "top_left"
    nanodet = recognise({}, [("data", [1, 3, 320, 320])], [("output", [1, 2125, 112])])
    assert nanodet.decoder["type"] == "gfl" and nanodet.decoder["cell_offset"] == 0.0
    assert nanodet.preprocess["color"] == "BGR" and nanodet.labels == COCO80
    levels = [(1600, 80), (400, 80), (100, 80), (25, 80), (1600, 32), (400, 32), (100, 32), (25, 32)]
    pico = recognise({}, [("image", [1, 3, 320, 320])], [("o%d" % i, [1, a, c]) for i, (a, c) in enumerate(levels)])
    assert pico.decoder["type"] == "gfl" and pico.decoder["cell_offset"] == 0.5 and pico.source["framework"] == "picodet"
    ssd = recognise({}, [("input_0", [1, 3, 300, 300])], [("scores", [1, 3000, 5]), ("boxes", [1, 3000, 4])])
    assert ssd.decoder["type"] == "ssd" and ssd.labels[0] == "BACKGROUND" and len(ssd.labels) == 5
    tv = recognise({}, [("images", [3, 320, 320])], [("boxes", ["k", 4]), ("scores", ["k"]), ("labels", ["k"])])
    assert tv.decoder["type"] == "torchvision" and tv.input["layout"] == "CHW" and tv.labels == coco91()
    assert tv.input_hw == (320, 320)
    for meta in (yolox, nanodet, pico, ssd, tv):
        assert "output signature" in meta.source["recognised"]


def test_unknown_signatures_are_not_guessed():
    assert recognise({}, [("x", [1, 3, 640, 640])], [("y", [1, 25200, 85])]) is None     # YOLOv5 without names
    assert recognise({}, [("x", [1, 3, "h", "w"])], [("y", [1, 8400, 85])]) is None      # dynamic input
    assert recognise({}, [("x", [1, 3, 224, 224])], [("logits", [1, 1000])]) is None


def test_ultralytics_props_pick_rtdetr_and_end2end():
    names = repr(dict(enumerate(LABELS)))
    base = {"names": names, "stride": "32", "imgsz": "[64, 64]", "task": "detect"}
    rt = recognise(dict(base, description="Ultralytics rtdetr-l model", head="RTDETRDecoder"),
                   [("images", [1, 3, 64, 64])], [("output0", ["a", "b", 6])])
    assert rt.decoder["type"] == "rtdetr" and rt.decoder["columns"] == "class" and rt.preprocess["resize"] == "stretch"
    old = recognise(dict(base, description="Ultralytics RT-DETR-l model"), [("images", [1, 3, 64, 64])],
                    [("output0", [1, 300, 7])])
    assert old.decoder["type"] == "rtdetr" and old.decoder["columns"] == "scores"
    e2e = recognise(dict(base, description="Ultralytics YOLOv10n model", end2end="True"),
                    [("images", [1, 3, 64, 64])], [("output0", [1, 300, 6])])
    assert e2e.decoder["type"] == "yolo_end2end" and "YOLOv10n" in e2e.source["recognised"]
    v11 = recognise(dict(base, description="Ultralytics YOLO11n model"), [("images", [1, 3, 64, 64])],
                    [("output0", [1, 7, 84])])
    assert v11.decoder["type"] == "yolov8" and v11.source["model"] == "YOLO11n"
    with pytest.raises(MetadataError, match="RT-DETR"):
        recognise(base, [("images", [1, 3, 64, 64])], [("output0", [1, 9, 9])])


def test_every_decoder_is_registered_with_a_loadable_target():
    for name in DECODERS:
        assert callable(DECODERS.load(name))
        if DECODERS.get(name, "recognise"):
            from edgekit.registry import load_target
            assert callable(load_target(DECODERS.get(name, "recognise")))
